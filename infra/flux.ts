// The Flux objects: an OCIRepository + HelmRelease for clusters Pulumi drives directly, or a
// Kustomization for clusters whose manifests live in Git.
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import { inheritedDependsOn } from './component-options.js';
import {
  buildHelmRelease,
  buildKustomization,
  buildOciRepository,
  type FluxKustomizationSpec,
  type FluxReleaseSpec,
} from './manifests.js';

/** Turns a typed manifest into a Pulumi CustomResource (the object is passed through as is). */
function customResource(
  name: string,
  obj: { apiVersion: string; kind: string; metadata?: object; spec?: object },
  opts: pulumi.CustomResourceOptions,
): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    name,
    { apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata, spec: obj.spec },
    opts,
  );
}

/** Arguments of `FluxRelease`. */
export type FluxReleaseArgs = FluxReleaseSpec;

/** The chart's OCIRepository and the HelmRelease that installs it; `pulumi up` waits for Ready. */
export class FluxRelease extends pulumi.ComponentResource {
  /** The OCIRepository. */
  public readonly repository: k8s.apiextensions.CustomResource;
  /** The HelmRelease. */
  public readonly release: k8s.apiextensions.CustomResource;

  constructor(name: string, args: FluxReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:flux:FluxRelease', name, {}, opts);
    const after = inheritedDependsOn(opts);
    this.repository = customResource(`${name}-chart`, buildOciRepository(args), {
      parent: this,
      dependsOn: after,
    });
    this.release = customResource(`${name}-release`, buildHelmRelease(args), {
      parent: this,
      dependsOn: [...after, this.repository],
    });
    this.registerOutputs({ release: this.release.metadata.name });
  }
}

/** Arguments of `FluxKustomization`. */
export type FluxKustomizationArgs = FluxKustomizationSpec;

/** The Kustomization of a Git-managed cluster; `pulumi up` waits for its health checks. */
export class FluxKustomization extends pulumi.ComponentResource {
  /** The Kustomization. */
  public readonly kustomization: k8s.apiextensions.CustomResource;

  constructor(name: string, args: FluxKustomizationArgs, opts?: pulumi.ComponentResourceOptions) {
    super('peili:flux:FluxKustomization', name, {}, opts);
    this.kustomization = customResource(`${name}-kustomization`, buildKustomization(args), {
      parent: this,
      dependsOn: inheritedDependsOn(opts),
    });
    this.registerOutputs({ kustomization: this.kustomization.metadata.name });
  }
}
