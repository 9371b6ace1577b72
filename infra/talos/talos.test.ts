import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import * as talos from './index.js';
import { runUnderMocks } from '../mock-engine.js';

describe('Talos provider binding', () => {
  it('registers the provider tokens with version, plugin URL and secret inputs', async () => {
    const run = await runUnderMocks(
      () => {
        const secrets = new talos.machine.Secrets('s', { talosVersion: 'v1.11' });
        const config = talos.machine.getConfigurationOutput({
          clusterName: 'c',
          clusterEndpoint: 'https://10.0.0.10:6443',
          machineType: 'worker',
          machineSecrets: secrets.machineSecrets,
          talosVersion: 'v1.11',
        });
        const apply = new talos.machine.ConfigurationApply('a', {
          clientConfiguration: secrets.clientConfiguration,
          machineConfigurationInput: config.machineConfiguration,
          node: '10.0.0.21',
          configPatches: ['machine: {}'],
          applyMode: 'no_reboot',
        });
        const client = talos.client.getConfigurationOutput({
          clusterName: 'c',
          clientConfiguration: secrets.clientConfiguration,
          nodes: ['10.0.0.21'],
        });
        return { mode: apply.resolvedApplyMode, talosconfig: client.talosConfig, secret: pulumi.secret('x') };
      },
      { values: {} },
    );

    const [secrets, apply] = [
      'talos:machine/secrets:Secrets',
      'talos:machine/configurationApply:ConfigurationApply',
    ].map((t) => {
      const r = run.registrations.find((x) => x.type === t);
      assert.ok(r, t);
      return r;
    });
    assert.deepEqual(secrets?.inputs, { talosVersion: 'v1.11' });
    assert.deepEqual([...(secrets?.additionalSecretOutputs ?? [])].sort(), [
      'clientConfiguration',
      'machineSecrets',
    ]);
    assert.deepEqual(apply?.inputs, {
      applyMode: 'no_reboot',
      clientConfiguration: { caCertificate: 'ca', clientCertificate: 'crt', clientKey: 'key' },
      configPatches: ['machine: {}'],
      machineConfigurationInput: '# generated worker config for c\n',
      node: '10.0.0.21',
    });
    assert.deepEqual([...(apply?.secretInputs ?? [])].sort(), [
      'clientConfiguration',
      'machineConfigurationInput',
    ]);
    for (const r of [secrets, apply]) {
      assert.equal(r?.version, talos.TALOS_PROVIDER_VERSION);
      assert.equal(r?.pluginDownloadURL, 'github://api.github.com/pulumiverse');
    }
    assert.deepEqual(run.invocations.map((i) => [i.token, i.version, i.pluginDownloadURL]).sort(), [
      ['talos:client/getConfiguration:getConfiguration', '0.8.1', 'github://api.github.com/pulumiverse'],
      ['talos:machine/getConfiguration:getConfiguration', '0.8.1', 'github://api.github.com/pulumiverse'],
    ]);
    assert.deepEqual(run.invocations.find((i) => i.token.startsWith('talos:client'))?.inputs, {
      clientConfiguration: { caCertificate: 'ca', clientCertificate: 'crt', clientKey: 'key' },
      clusterName: 'c',
      nodes: ['10.0.0.21'],
    });
    assert.equal(run.outputs.mode, 'no_reboot');
    assert.equal(run.outputs.talosconfig, 'context: c\n');
    // Mocks do not apply additionalSecretOutputs, so only explicit secrets are secret here; the
    // program wraps the talosconfig in pulumi.secret itself (program.test.ts checks it).
    assert.deepEqual(run.secretOutputs, ['secret']);
  });

  it('lets an explicit version override the default, as the SDK does', () => {
    assert.deepEqual(talos.withProviderDefaults({ version: '0.9.0' }), {
      version: '0.9.0',
      pluginDownloadURL: talos.TALOS_PLUGIN_DOWNLOAD_URL,
    });
    assert.deepEqual(talos.withProviderDefaults(undefined), {
      version: '0.8.1',
      pluginDownloadURL: 'github://api.github.com/pulumiverse',
    });
  });
});
