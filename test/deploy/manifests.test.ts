import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';
import { repoRoot } from '../helpers/paths.ts';
import { type Doc, deployDir, hasCommand, productionConfig, readYamlDocuments, run } from './deploy-files.ts';

const k8sDir = join(deployDir, 'k8s');
const containerfile = join(deployDir, 'container/Containerfile');

/** Every document of every manifest, keyed "Kind/name". */
function loadManifests(): Map<string, Doc> {
  const out = new Map<string, Doc>();
  for (const file of readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of readYamlDocuments(join(k8sDir, file))) {
      expect({ file, apiVersion: typeof doc.apiVersion, kind: typeof doc.kind }).toEqual({
        file,
        apiVersion: 'string',
        kind: 'string',
      });
      if (doc.kind === 'Kustomization') continue;
      out.set(`${doc.kind}/${doc.metadata.name}`, doc);
    }
  }
  return out;
}

const manifests = loadManifests();
const deployment = manifests.get('Deployment/ssc');
const pod = deployment.spec.template;
const container = pod.spec.containers.find((c: Doc) => c.name === 'ssc');
const configMap = manifests.get('ConfigMap/ssc-config');
/** The config a pod runs with: production.toml from the image plus the ConfigMap and example Secret. */
const secretExample = readYamlDocuments(join(k8sDir, 'secret.example.yaml'))[0];
const podConfig = productionConfig({ ...configMap.data, ...secretExample.stringData });

/** Resolves a probe's or Service's port (name or number) to the container port number. */
function containerPort(port: string | number): number {
  if (typeof port === 'number') return port;
  const found = container.ports.find((p: Doc) => p.name === port);
  if (!found) throw new Error(`no container port named ${port}`);
  return found.containerPort;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Parses a Containerfile into instructions (continuations joined, comments dropped). */
function parseContainerfile(text: string): { instruction: string; args: string }[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [instruction, ...rest] = line.split(/\s+/);
      return { instruction: instruction!.toUpperCase(), args: rest.join(' ') };
    });
}

describe('Kubernetes manifests', () => {
  test('parse, and the kustomization lists files that exist', () => {
    expect([...manifests.keys()].sort()).toEqual([
      'ConfigMap/ssc-config',
      'Deployment/ssc',
      'Deployment/ssc-redis',
      'PodDisruptionBudget/ssc',
      'Secret/ssc-secrets',
      'Service/ssc',
      'Service/ssc-redis',
    ]);
    const kustomization = readYamlDocuments(join(k8sDir, 'kustomization.yaml'))[0];
    for (const resource of kustomization.resources) expect(existsSync(join(k8sDir, resource))).toBe(true);
    // No secret value is applied from the repository.
    expect(kustomization.resources).not.toContain('secret.example.yaml');
  });

  test('the ConfigMap and Secret keys are valid config overrides that land where intended', () => {
    for (const key of [...Object.keys(configMap.data), ...Object.keys(secretExample.stringData)]) {
      expect(key).toMatch(/^SSC_[A-Z0-9_]+$/);
    }
    expect(podConfig.broker.type).toBe('redis');
    expect(podConfig.broker.redis.url).toBe('redis://ssc-redis:6379');
    expect(podConfig.server.tls.cert).toBe('/etc/ssc/tls/tls.crt');
    expect(podConfig.log.console).toBe(true);
    expect(podConfig.security.adminToken).toBe(secretExample.stringData.SSC_SECURITY__ADMIN_TOKEN);
    // The Redis URL names the Redis Service.
    expect(manifests.has(`Service/${new URL(podConfig.broker.redis.url).hostname}`)).toBe(true);
  });

  test('the Deployment probes /live and /ready on the ops port of the config', () => {
    expect(container.startupProbe.httpGet.path).toBe('/live');
    expect(container.livenessProbe.httpGet.path).toBe('/live');
    expect(container.readinessProbe.httpGet.path).toBe('/ready');
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      expect(containerPort(probe.httpGet.port)).toBe(podConfig.server.metricsPort);
    }
    expect(containerPort('public')).toBe(podConfig.server.port);
    const annotations = pod.metadata.annotations;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(podConfig.server.metricsPort);
    expect(annotations['prometheus.io/path']).toBe('/metrics');
  });

  test('the pod drains within its grace period and runs locked down', () => {
    const graceSeconds = pod.spec.terminationGracePeriodSeconds;
    expect(podConfig.server.drainDelayMs).toBeLessThan(podConfig.server.shutdownDeadlineMs);
    expect(graceSeconds).toBeGreaterThanOrEqual(podConfig.server.shutdownDeadlineMs / 1000 + 5);
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    expect(pod.spec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    // With a read-only root, everything the server writes must be a volume.
    const mounts = container.volumeMounts.map((m: Doc) => m.mountPath);
    for (const path of [podConfig.server.dataDir, podConfig.log.dir, '/tmp']) expect(mounts).toContain(path);
    expect(mounts).toContain(`${podConfig.server.dataDir}/keys`);
    expect(container.envFrom).toContainEqual({ secretRef: { name: 'ssc-secrets' } });
    expect(container.envFrom).toContainEqual({ configMapRef: { name: 'ssc-config' } });
    const volumes = Object.fromEntries(pod.spec.volumes.map((v: Doc) => [v.name, v]));
    expect(volumes['node-keys'].secret.defaultMode).toBe(0o440);
  });

  test('Services, the PodDisruptionBudget and Redis select the right pods', () => {
    const serverLabels = pod.metadata.labels;
    const service = manifests.get('Service/ssc');
    expect(matches(service.spec.selector, serverLabels)).toBe(true);
    for (const port of service.spec.ports) expect(containerPort(port.targetPort)).toBe(port.port);
    const pdb = manifests.get('PodDisruptionBudget/ssc');
    expect(matches(pdb.spec.selector.matchLabels, serverLabels)).toBe(true);
    expect(pdb.spec.maxUnavailable).toBeLessThan(deployment.spec.replicas);
    expect(matches(deployment.spec.selector.matchLabels, serverLabels)).toBe(true);
    const redis = manifests.get('Deployment/ssc-redis');
    const redisService = manifests.get('Service/ssc-redis');
    expect(matches(redisService.spec.selector, redis.spec.template.metadata.labels)).toBe(true);
    expect(matches(service.spec.selector, redis.spec.template.metadata.labels)).toBe(false);
    expect(redis.spec.template.spec.containers[0].image).toMatch(/^redis:\d+\.\d+\.\d+/);
  });

  // `kubectl kustomize` is also run where kubectl is installed (it is optional in CI: the
  // checks above parse and cross-check every manifest without it).
  if (hasCommand('kubectl')) {
    test('kubectl kustomize builds the kustomization', () => {
      const result = run(['kubectl', 'kustomize', k8sDir]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('kind: PodDisruptionBudget');
    });
  }
});

describe('Containerfile', () => {
  const instructions = parseContainerfile(readFileSync(containerfile, 'utf8'));
  const all = (name: string) => instructions.filter((i) => i.instruction === name).map((i) => i.args);
  const config = productionConfig();

  test('parses into known instructions on a pinned Bun base image', () => {
    const known = [
      'FROM',
      'RUN',
      'COPY',
      'WORKDIR',
      'ENV',
      'USER',
      'EXPOSE',
      'VOLUME',
      'STOPSIGNAL',
      'HEALTHCHECK',
      'ENTRYPOINT',
      'CMD',
      'ARG',
    ];
    for (const { instruction } of instructions) expect(known).toContain(instruction);
    const froms = all('FROM');
    expect(froms.length).toBeGreaterThanOrEqual(1);
    for (const from of froms) expect(from).toMatch(/^oven\/bun:\d+\.\d+\.\d+(-[a-z]+)?( AS \w+)?$/);
    expect(froms.at(-1)).toContain(`oven/bun:${Bun.version}`);
  });

  test('runs as non-root with the ports, volumes and health check of the config', () => {
    const user = all('USER').at(-1)!;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(all('EXPOSE').join(' ').split(/\s+/).map(Number).sort()).toEqual(
      [config.server.port, config.server.metricsPort].sort(),
    );
    const volumes = JSON.parse(all('VOLUME')[0]!);
    expect(volumes.sort()).toEqual([config.server.dataDir, config.log.dir].sort());
    const healthcheck = all('HEALTHCHECK')[0]!;
    expect(healthcheck).toContain(`http://127.0.0.1:${config.server.metricsPort}/live`);
    expect(config.server.metricsHost).toBe('0.0.0.0'); // so 127.0.0.1 reaches it inside the container
    expect(all('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(JSON.parse(all('ENTRYPOINT')[0]!)).toEqual(['bun', 'src/cli.ts']);
    expect(JSON.parse(all('CMD')[0]!)).toEqual(['serve']);
  });

  test('copies only paths that exist in the build context', () => {
    for (const copy of all('COPY')) {
      if (copy.startsWith('--from=')) continue;
      const sources = copy.split(/\s+/).slice(0, -1);
      for (const source of sources)
        expect({ source, exists: existsSync(join(repoRoot, source)) }).toEqual({ source, exists: true });
    }
  });
});

describe('probe routes on a running server', () => {
  let server: SpawnedServer;
  beforeAll(async () => {
    server = await spawnServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('every probe path of the Deployment, the Containerfile and Prometheus answers 200 on the ops port', async () => {
    const paths = new Set<string>([
      container.startupProbe.httpGet.path,
      container.livenessProbe.httpGet.path,
      container.readinessProbe.httpGet.path,
      pod.metadata.annotations['prometheus.io/path'],
      new URL(/http:\/\/[^'"\s]+/.exec(readFileSync(containerfile, 'utf8'))![0]).pathname,
    ]);
    expect([...paths].sort()).toEqual(['/live', '/metrics', '/ready']);
    for (const path of paths) {
      const response = await fetch(`${server.opsUrl}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 200 });
    }
    const metrics = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(metrics).toContain('ssc_build_info');
  });
});
