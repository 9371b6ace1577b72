/**
 * Normalises a protobuf `map<string,string>` as grpc-js decodes it (a plain object, absent when
 * empty) into a fresh label record; non-string values are dropped rather than trusted.
 */
export function toLabels(map: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  if (map === null || typeof map !== 'object') return labels;
  for (const [key, value] of Object.entries(map)) {
    if (typeof value === 'string') labels[key] = value;
  }
  return labels;
}
