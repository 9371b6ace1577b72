// The 200 MiB blob the data-plane, peer-hop and cost scenarios serve: IMAGES.big pulled on node 1
// straight from the registry (unthrottled), once per bed.
import { buildImage, IMAGES } from '../testbed/index.js';
import type { Bed, PushedImage } from './bed.js';

/** The seeded image and its one layer. */
export interface SeededBlob {
  readonly image: PushedImage;
  readonly digest: string;
  readonly size: number;
  /** The blob in node 1's content store (the file Peili serves). */
  readonly path: string;
}

const seeded = new WeakMap<Bed, Promise<SeededBlob>>();

/** Pushes IMAGES.big and pulls it on node 1 (index 0), once per bed; waits until node 2 finds it at a peer. */
export function seedBigBlob(bed: Bed): Promise<SeededBlob> {
  let promise = seeded.get(bed);
  if (!promise) {
    promise = (async () => {
      const layout = await buildImage(IMAGES.big);
      const image = await bed.push(layout, 'bench/big');
      await bed.route(0, 'direct');
      try {
        await bed.pull(0, image.ref);
      } finally {
        await bed.route(0, 'peili');
      }
      await bed.waitAdvertised(1, image);
      const digest = layout.images[0]!.layerDigests[0]!;
      const size = layout.blobs.find((b) => b.digest === digest)!.size;
      return { image, digest, size, path: bed.blobPath(0, digest) };
    })();
    seeded.set(bed, promise);
  }
  return promise;
}
