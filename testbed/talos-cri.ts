// containerd 2.x nodes of the test bed are configured the way Talos configures CRI containerd:
// a version-3 main config imports one CRI config, assembled from `*.part` files sorted by name
// and merged with Talos's rules (../shared/TALOS-NOTES.md). The parts reproduce what Talos ships
// for images (00-base.part) and what it generates for registries (01-registries.part); the bed
// adds its own machine-specific settings (10-testbed.part) and then whatever customization part
// a test asks for (20-customization.part, e.g. the one infra/ renders for Peili).
import { parse, stringify, type TomlTable } from 'smol-toml';

/** One CRI config part: its file name (sort key) and TOML text. */
export interface CriPart {
  readonly name: string;
  readonly toml: string;
}

/** containerd 2's CRI images plugin (discard, local pull, snapshotter, registry config path). */
export const CRI_IMAGES = 'io.containerd.cri.v1.images';

/**
 * Talos's `00-base.part`, for images: layers are discarded after unpack and CRI pulls take the
 * local (non-transfer-service) path. NRI is off as on Talos. Talos's base runtime spec is left
 * out: the bed runs no containers, and its file does not exist here.
 */
export function talosBasePart(): CriPart {
  return {
    name: '00-base.part',
    toml: [
      'version = 3',
      '',
      `[plugins."${CRI_IMAGES}"]`,
      '  discard_unpacked_layers = true',
      '  use_local_image_pull = true',
      '',
      '[plugins."io.containerd.nri.v1.nri"]',
      '  disable = true',
      '',
    ].join('\n'),
  };
}

/** Talos's generated `01-registries.part`: containerd reads hosts.toml files under `configPath`. */
export function talosRegistriesPart(configPath: string): CriPart {
  return {
    name: '01-registries.part',
    toml: [`[plugins."${CRI_IMAGES}".registry]`, `  config_path = ${JSON.stringify(configPath)}`, ''].join(
      '\n',
    ),
  };
}

const isTable = (value: unknown): value is TomlTable =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

const kindOf = (value: unknown): string =>
  Array.isArray(value)
    ? 'array'
    : isTable(value)
      ? 'table'
      : value instanceof Date
        ? 'datetime'
        : typeof value;

const isZero = (value: unknown): boolean => value === 0 || value === '' || value === 0n;

function mergeInto(target: TomlTable, source: TomlTable, path: string, origin: string): void {
  for (const [key, value] of Object.entries(source)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (!(key in target)) {
      target[key] = structuredClone(value);
      continue;
    }
    const current = target[key];
    if (kindOf(current) !== kindOf(value)) {
      throw new Error(`${origin}: ${at} is a ${kindOf(value)}, earlier parts made it a ${kindOf(current)}`);
    }
    if (isTable(current) && isTable(value)) mergeInto(current, value, at, origin);
    else if (Array.isArray(current) && Array.isArray(value))
      target[key] = [...current, ...structuredClone(value)];
    // Booleans always take the later value (so a later `false` turns a setting off); other
    // scalars do unless the later one is a zero value.
    else if (typeof value === 'boolean' || !isZero(value)) target[key] = value;
  }
}

/**
 * Merges CRI parts the way Talos does: sorted by name; tables merge recursively; a later scalar
 * wins unless it is a zero value, a boolean always wins; arrays concatenate; a type mismatch is
 * an error naming the part and key.
 */
export function mergeCriParts(parts: readonly CriPart[]): string {
  const merged: TomlTable = {};
  for (const part of [...parts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    let table: TomlTable;
    try {
      table = parse(part.toml);
    } catch (err) {
      throw new Error(`${part.name}: not valid TOML: ${(err as Error).message}`, { cause: err });
    }
    mergeInto(merged, table, '', part.name);
  }
  return stringify(merged) + '\n';
}
