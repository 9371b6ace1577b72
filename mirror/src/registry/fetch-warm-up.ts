let warmedUp = false;

/**
 * Node loads fetch's HTTP client (undici) on the first call, synchronously (hundreds of ms on a
 * busy node): callers pay that once at construction rather than inside a request's time limit.
 */
export function warmUpFetch(): void {
  if (warmedUp) return;
  warmedUp = true;
  fetch('data:,').then(
    (response) => void response.body?.cancel().catch(() => {}),
    () => {},
  );
}
