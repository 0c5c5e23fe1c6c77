import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/agent/config.ts';

const ROOT = new URL('../../deploy/', import.meta.url);

interface Container {
  args: string[];
  env: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  securityContext: {
    allowPrivilegeEscalation: boolean;
    privileged: boolean;
    capabilities: { drop: string[]; add: string[] };
  };
}

function manifests(): Record<string, unknown>[] {
  const text = readFileSync(new URL('kubernetes/flowtap.yaml', ROOT), 'utf8');
  return parseAllDocuments(text).map((doc) => {
    assert.deepEqual(doc.errors, [], 'the manifest parses');
    return doc.toJS() as Record<string, unknown>;
  });
}

function byKind(kind: string): Record<string, unknown> {
  const found = manifests().find((m) => m.kind === kind);
  assert.ok(found, `a ${kind}`);
  return found;
}

function container(): Container {
  const spec = byKind('DaemonSet').spec as { template: { spec: { containers: Container[] } } };
  return spec.template.spec.containers[0];
}

/** The capabilities the systemd unit grants, without their CAP_ prefix, as Kubernetes names them. */
function unitCapabilities(): string[] {
  const unit = readFileSync(new URL('flowtap.service', ROOT), 'utf8');
  const line = /^AmbientCapabilities=(.*)$/m.exec(unit)?.[1];
  assert.ok(line, 'the unit grants ambient capabilities');
  assert.equal(/^CapabilityBoundingSet=(.*)$/m.exec(unit)?.[1], line, 'and bounds them to the same');
  return line
    .split(/\s+/)
    .map((c) => c.replace(/^CAP_/, ''))
    .sort();
}

test('the DaemonSet grants exactly the capabilities of the systemd unit and drops every other', () => {
  const security = container().securityContext;
  assert.deepEqual([...security.capabilities.add].sort(), unitCapabilities());
  assert.deepEqual(security.capabilities.drop, ['ALL']);
  assert.equal(security.privileged, false);
  assert.equal(security.allowPrivilegeEscalation, false);
});

test('the DaemonSet settings are ones flowtap accepts, with metrics where the Service looks', () => {
  const c = container();
  const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
  const config = loadConfig({ flags: {}, env, stdoutIsTty: false });
  assert.deepEqual(c.args, ['run', '--output', 'json']);
  assert.equal(config.logFormat, 'json');
  const metricsPort = c.ports.find((p) => p.name === 'metrics')?.containerPort;
  assert.deepEqual(config.metrics, { host: '0.0.0.0', port: metricsPort });
  const service = byKind('Service').spec as {
    selector: Record<string, string>;
    ports: { targetPort: string }[];
  };
  assert.equal(service.ports[0].targetPort, 'metrics');
  const labels = (byKind('DaemonSet').spec as { template: { metadata: { labels: Record<string, string> } } })
    .template.metadata.labels;
  assert.deepEqual(service.selector, labels, 'the Service selects the agents');
});
