import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fromTalosconfig, fromTalosctlSecrets } from './talos-secrets.js';
import { parseStackConfig } from './config.js';
import { sourceOf, validValues } from './test-fixtures.js';

const SECRETS_YAML = `
cluster:
  id: cid
  secret: csecret
secrets:
  bootstraptoken: abc.def
  secretboxencryptionsecret: sbox
trustdinfo:
  token: trust
certs:
  etcd: { crt: e-crt, key: e-key }
  k8s: { crt: k-crt, key: k-key }
  k8saggregator: { crt: a-crt, key: a-key }
  k8sserviceaccount: { key: sa-key }
  os: { crt: o-crt, key: o-key }
`;

const TALOSCONFIG = `
context: lab
contexts:
  lab:
    endpoints: [10.0.0.11]
    ca: Y2E=
    crt: Y3J0
    key: a2V5
  other:
    ca: b2NhCg==
    crt: b2NydAo=
    key: b2tleQo=
`;

describe('talosctl file conversion', () => {
  it('converts secrets.yaml into the provider shape the stack config accepts', () => {
    const secrets = fromTalosctlSecrets(SECRETS_YAML);
    assert.deepEqual(secrets, {
      certs: {
        etcd: { cert: 'e-crt', key: 'e-key' },
        k8s: { cert: 'k-crt', key: 'k-key' },
        k8sAggregator: { cert: 'a-crt', key: 'a-key' },
        k8sServiceaccount: { key: 'sa-key' },
        os: { cert: 'o-crt', key: 'o-key' },
      },
      cluster: { id: 'cid', secret: 'csecret' },
      secrets: { bootstrapToken: 'abc.def', secretboxEncryptionSecret: 'sbox' },
      trustdinfo: { token: 'trust' },
    });
    const values = { ...validValues(), talosMachineSecrets: secrets };
    assert.doesNotThrow(() => parseStackConfig(sourceOf(values)));
  });

  it('names the missing field', () => {
    assert.throws(() => fromTalosctlSecrets(SECRETS_YAML.replace('  os: { crt: o-crt, key: o-key }\n', '')), {
      message: 'missing certs.os.crt',
    });
  });

  it('extracts the current or a named context of a talosconfig', () => {
    assert.deepEqual(fromTalosconfig(TALOSCONFIG), {
      caCertificate: 'Y2E=',
      clientCertificate: 'Y3J0',
      clientKey: 'a2V5',
    });
    assert.deepEqual(fromTalosconfig(TALOSCONFIG, 'other'), {
      caCertificate: 'b2NhCg==',
      clientCertificate: 'b2NydAo=',
      clientKey: 'b2tleQo=',
    });
    assert.throws(() => fromTalosconfig(TALOSCONFIG, 'prod'), {
      message: "talosconfig has no context 'prod'",
    });
  });
});
