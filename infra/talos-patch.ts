// What Peili changes in a Talos node's configuration, and nothing more: two parts, in the form
// each Talos version wants them.
//  1. registries: containerd asks the node-local mirror first. Talos's own registry config
//     (`machine.registries.mirrors` before 1.12, `RegistryMirrorConfig` documents from 1.12) is
//     applied without a reboot and Talos keeps the hosts.toml it writes itself.
//  2. keep layers: `discard_unpacked_layers = false` for CRI pulls, or containerd drops the layer
//     blobs the mirror would serve. Before 1.14 that is the machine file
//     `/etc/cri/conf.d/20-customization.part`, which only takes effect after a reboot; from 1.14 a
//     `CRICustomizationConfig` document, which restarts CRI without one.
// Everything here is pure: the components in talos-apply.ts apply it, `render` and the stack
// outputs print it for clusters whose Talos config is owned elsewhere.
import { stringify } from 'yaml';

/** The CRI drop-in file Talos merges into containerd's configuration (before 1.14). */
export const CRI_CUSTOMIZATION_PATH = '/etc/cri/conf.d/20-customization.part';

/** containerd 2's CRI images plugin key (Talos ≥ 1.8); the 1.x key is silently ignored there. */
export const CRI_IMAGES_PLUGIN = 'io.containerd.cri.v1.images';

/** Name of Peili's `CRICustomizationConfig` document (Talos ≥ 1.14). */
export const CRI_CUSTOMIZATION_NAME = 'peili-keep-layers';

/**
 * The TOML of the CRI part: keep unpacked layers. Pure and dependency-free (the test bed imports
 * it to configure its containerd like a patched Talos node). Talos writes the registry
 * `config_path` itself (`01-registries.part`), so the part does not repeat it.
 */
export function criCustomizationToml(): string {
  return [`[plugins."${CRI_IMAGES_PLUGIN}"]`, '  discard_unpacked_layers = false', ''].join('\n');
}

/** What a Talos version offers for Peili's two parts. */
export interface TalosFeatures {
  /** `RegistryMirrorConfig` documents (1.12+) instead of `machine.registries.mirrors`. */
  readonly registryDocument: boolean;
  /** `CRICustomizationConfig` documents (1.14+): the CRI part applies without a reboot. */
  readonly criDocument: boolean;
}

/** Parses `v1.11`, `v1.12.3` or `1.14.0` into major/minor; undefined when it is not a version. */
export function parseTalosVersion(version: string): { major: number; minor: number } | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(version.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** The documents a Talos version takes. Throws on something that is not a version. */
export function talosFeatures(version: string): TalosFeatures {
  const v = parseTalosVersion(version);
  if (!v) throw new Error(`not a Talos version: '${version}'`);
  const atLeast = (minor: number): boolean => v.major > 1 || (v.major === 1 && v.minor >= minor);
  return { registryDocument: atLeast(12), criDocument: atLeast(14) };
}

/**
 * The mirror endpoint every node gets: the daemon's hostPort on the node's loopback address. The
 * same URL is right on every node (each containerd reaches its own daemon), so one patch fits
 * the whole cluster, and no other host can be sent there by it. See docs/deploy-pulumi.md.
 */
export function defaultMirrorEndpoint(hostPort: number): string {
  return `http://127.0.0.1:${hostPort}`;
}

/** Talos's registry name for "every registry". */
export const ALL_REGISTRIES = '*';

function registryNames(mirroredRegistries: readonly string[]): string[] {
  return mirroredRegistries.length === 0 ? [ALL_REGISTRIES] : [...mirroredRegistries];
}

/** The registries part (YAML, one or more documents) for a Talos version. */
export function registriesPatch(
  talosVersion: string,
  mirroredRegistries: readonly string[],
  endpoint: string,
): string {
  const names = registryNames(mirroredRegistries);
  if (talosFeatures(talosVersion).registryDocument) {
    return names
      .map((name) =>
        stringify({
          apiVersion: 'v1alpha1',
          kind: 'RegistryMirrorConfig',
          name,
          endpoints: [{ url: endpoint }],
        }),
      )
      .join('---\n');
  }
  return stringify({
    machine: {
      registries: { mirrors: Object.fromEntries(names.map((n) => [n, { endpoints: [endpoint] }])) },
    },
  });
}

/** The keep-layers part (YAML) for a Talos version. */
export function keepLayersPatch(talosVersion: string): string {
  if (talosFeatures(talosVersion).criDocument) {
    return stringify({
      apiVersion: 'v1alpha1',
      kind: 'CRICustomizationConfig',
      name: CRI_CUSTOMIZATION_NAME,
      content: criCustomizationToml(),
    });
  }
  return stringify({
    machine: { files: [{ op: 'create', path: CRI_CUSTOMIZATION_PATH, content: criCustomizationToml() }] },
  });
}

/** Peili's parts of a node's Talos configuration. */
export interface PeiliTalosPatches {
  /** Points containerd at the mirror; applies without a reboot. */
  readonly registries: string;
  /** Keeps unpacked layers. */
  readonly keepLayers: string;
  /** Whether `keepLayers` takes effect only after a reboot (Talos before 1.14). */
  readonly keepLayersNeedsReboot: boolean;
}

/** Both parts for a Talos version, the registries mirrored and the endpoint. */
export function peiliTalosPatches(
  talosVersion: string,
  mirroredRegistries: readonly string[],
  endpoint: string,
): PeiliTalosPatches {
  return {
    registries: registriesPatch(talosVersion, mirroredRegistries, endpoint),
    keepLayers: keepLayersPatch(talosVersion),
    keepLayersNeedsReboot: !talosFeatures(talosVersion).criDocument,
  };
}

/** Both parts as one YAML text (documents separated by `---`), as `talosctl patch mc -p @file` takes. */
export function joinPatches(patches: readonly string[]): string {
  return patches.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('---\n');
}

/**
 * The install settings the node runs, from the stack config (a user part, not Peili's): without
 * it the provider's generated config would carry its own installer image and `/dev/sda`.
 */
export function installPatch(image: string, disk: string): string {
  return stringify({ machine: { install: { image, disk } } });
}
