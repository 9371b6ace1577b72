// A component's `dependsOn` makes the component wait, but the SDK does not pass it on to the
// children it creates: each component hands it to its children explicitly, so "the HelmRelease
// after the Talos patch" holds for the object that matters, not just for its wrapper.
import * as pulumi from '@pulumi/pulumi';

/** The `dependsOn` of a component's options as a list, for its children. */
export function inheritedDependsOn(
  opts: pulumi.ComponentResourceOptions | undefined,
): pulumi.Input<pulumi.Resource>[] {
  const d = opts?.dependsOn;
  if (d === undefined) return [];
  if (Array.isArray(d)) return [...(d as pulumi.Input<pulumi.Resource>[])];
  if (pulumi.Resource.isInstance(d)) return [d];
  throw new Error('dependsOn of a Peili component must be a resource or a list of resources');
}
