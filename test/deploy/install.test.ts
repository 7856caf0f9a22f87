import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { loadNodeKeys } from '../../src/security/node-keys.ts';
import { repoRoot } from '../helpers/paths.ts';
import { installScript, run, snapshotTree, unitPath } from './deploy-files.ts';

const work = mkdtempSync(join(tmpdir(), 'ssc-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const install = (...args: string[]) => run(['bash', installScript, ...args]);

/** Parses the KEY=value lines of an environment file (what systemd's EnvironmentFile= reads). */
function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

describe('install.sh', () => {
  test('is valid bash, documents itself and refuses unknown options', () => {
    expect(run(['bash', '-n', installScript]).code).toBe(0);
    const help = install('--help');
    expect(help.code).toBe(0);
    for (const flag of ['--dry-run', '--prefix', '--no-user', '--skip-deps', '--firewall'])
      expect(help.stdout).toContain(flag);
    const bad = install('--no-such-flag');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--no-such-flag');
  });

  test('passes shellcheck', () => {
    const result = run(['shellcheck', installScript]);
    expect(result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  test('--dry-run into a fresh prefix prints the plan and creates nothing', () => {
    const prefix = join(work, 'dry-fresh');
    const result = install('--dry-run', '--prefix', prefix, '--no-user', '--skip-deps', '--firewall');
    expect(result.code).toBe(0);
    expect(existsSync(prefix)).toBe(false);
    const out = result.stdout;
    expect(out).toContain('dry run: nothing will be changed');
    for (const planned of [
      `would run: install -d -m 0750 ${prefix}/etc/ssc`,
      `would run: install -d -m 0750 ${prefix}/var/lib/ssc`,
      `would run: install -d -m 0700 ${prefix}/var/lib/ssc/keys`,
      `would run: install -d -m 0750 ${prefix}/var/log/ssc`,
      `would run: cp -R -p ${repoRoot}/src ${prefix}/opt/ssc/src`,
      `would run: install -m 0640 ${repoRoot}/config/production.toml ${prefix}/etc/ssc/production.toml`,
      `would write: ${prefix}/etc/ssc/ssc.env (mode 0640)`,
      `would write: ${prefix}/opt/ssc/bin/ssc (mode 0755)`,
      `would run: install -m 0644 ${unitPath} ${prefix}/etc/systemd/system/streamlined-secure-comms.service`,
      `would write: ${prefix}/etc/nftables.d/streamlined-secure-comms.nft (mode 0644)`,
    ]) {
      expect(out).toContain(planned);
    }
    expect(out).toMatch(
      /would run: .*src\/cli\.ts keygen --config \S+\/etc\/ssc\/production\.toml --data-dir \S+\/var\/lib\/ssc/,
    );
    expect(out).not.toMatch(/^\+ /m);
  });

  describe('a real run into a temporary prefix (--no-user --skip-deps --firewall)', () => {
    const prefix = join(work, 'root');
    let first: ReturnType<typeof run>;
    beforeAll(() => {
      first = install(
        '--prefix',
        prefix,
        '--no-user',
        '--skip-deps',
        '--firewall',
        '--metrics-allow',
        '10.0.0.0/8',
      );
    });

    test('succeeds and lays out the tree with the right modes', () => {
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const tree = snapshotTree(prefix);
      const mode = (path: string) => tree[path]?.split(' ').slice(0, 2).join(' ');
      expect({
        etc: mode('etc/ssc'),
        tls: mode('etc/ssc/tls'),
        config: mode('etc/ssc/production.toml'),
        env: mode('etc/ssc/ssc.env'),
        data: mode('var/lib/ssc'),
        keys: mode('var/lib/ssc/keys'),
        identity: mode('var/lib/ssc/keys/identity.json'),
        staticKey: mode('var/lib/ssc/keys/static.json'),
        logs: mode('var/log/ssc'),
        unit: mode('etc/systemd/system/streamlined-secure-comms.service'),
        launcher: mode('opt/ssc/bin/ssc'),
        app: mode('opt/ssc'),
        firewall: mode('etc/nftables.d/streamlined-secure-comms.nft'),
      }).toEqual({
        etc: 'dir 0750',
        tls: 'dir 0750',
        config: 'file 0640',
        env: 'file 0640',
        data: 'dir 0750',
        keys: 'dir 0700',
        identity: 'file 0600',
        staticKey: 'file 0600',
        logs: 'dir 0750',
        unit: 'file 0644',
        launcher: 'file 0755',
        app: 'dir 0755',
        firewall: 'file 0644',
      });
      expect(tree['usr/local/bin/ssc']).toBe('link /opt/ssc/bin/ssc');
      for (const item of [
        'src/cli.ts',
        'src/server.ts',
        'config/production.toml',
        'package.json',
        'bun.lock',
        'wasm/build.ts',
      ]) {
        expect({ item, installed: readFileSync(join(prefix, 'opt/ssc', item), 'utf8') }).toEqual({
          item,
          installed: readFileSync(join(repoRoot, item), 'utf8'),
        });
      }
      expect(existsSync(join(prefix, 'opt/ssc/node_modules'))).toBe(false); // --skip-deps
      expect(readFileSync(join(prefix, 'etc/systemd/system/streamlined-secure-comms.service'), 'utf8')).toBe(
        readFileSync(unitPath, 'utf8'),
      );
    });

    test('writes keys that load, and a config plus secrets that validate', () => {
      const keys = loadNodeKeys(join(prefix, 'var/lib/ssc'));
      expect(keys.identity.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(first.stdout).toContain(`identity fingerprint: ${keys.identity.fingerprint}`);
      const env = readEnvFile(join(prefix, 'etc/ssc/ssc.env'));
      expect(env.SSC_SECURITY__ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
      const config = loadConfig({
        file: join(prefix, 'etc/ssc/production.toml'),
        env: { NODE_ENV: 'production', ...env },
      });
      expect(config.security.adminToken).toBe(env.SSC_SECURITY__ADMIN_TOKEN!);
      expect(config.server.dataDir).toBe('/var/lib/ssc');
      expect(config.log.dir).toBe('/var/log/ssc');
    });

    test('writes a launcher with runtime paths and the production config', () => {
      const launcher = readFileSync(join(prefix, 'opt/ssc/bin/ssc'), 'utf8');
      expect(launcher.startsWith('#!/bin/sh\n')).toBe(true);
      expect(launcher).toContain(
        `exec ${Bun.which('bun')} /opt/ssc/src/cli.ts "$@" --config /etc/ssc/production.toml`,
      );
      expect(launcher).not.toContain(prefix);
      expect(run(['sh', '-n', join(prefix, 'opt/ssc/bin/ssc')]).code).toBe(0);
    });

    test('writes nftables rules: public port open, ops port only from loopback and the allowed networks', () => {
      const rules = readFileSync(join(prefix, 'etc/nftables.d/streamlined-secure-comms.nft'), 'utf8');
      expect(rules).toContain('tcp dport 8443 accept');
      expect(rules).toContain('tcp dport 9090 ip saddr { 127.0.0.0/8, 10.0.0.0/8 } accept');
      expect(rules).toMatch(/tcp dport 9090 drop/);
      expect(rules.indexOf('delete table inet streamlined-secure-comms')).toBeLessThan(
        rules.indexOf('table inet streamlined-secure-comms {'),
      );
    });

    test('running again keeps config, secrets and keys, refreshes the app, and a dry run then changes nothing', () => {
      const config = join(prefix, 'etc/ssc/production.toml');
      appendFileSync(config, '\n# local edit\n');
      chmodSync(config, 0o644); // drifted mode: put back to 0640
      const keysBefore = snapshotTree(join(prefix, 'var/lib/ssc/keys'));
      const envBefore = readFileSync(join(prefix, 'etc/ssc/ssc.env'), 'utf8');
      unlinkSync(join(prefix, 'opt/ssc/src/cli.ts'));
      writeFileSync(join(prefix, 'opt/ssc/src/stale-file.ts'), 'export {};\n');

      const again = install('--prefix', prefix, '--no-user', '--skip-deps');
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('node keys present');
      expect(again.stdout).toContain('kept (local changes)');
      expect(snapshotTree(join(prefix, 'var/lib/ssc/keys'))).toEqual(keysBefore);
      expect(readFileSync(join(prefix, 'etc/ssc/ssc.env'), 'utf8')).toBe(envBefore);
      expect(readFileSync(config, 'utf8')).toEndWith('# local edit\n');
      expect(snapshotTree(prefix)['etc/ssc/production.toml']?.split(' ')[1]).toBe('0640');
      expect(readFileSync(`${config}.dist`, 'utf8')).toBe(
        readFileSync(join(repoRoot, 'config/production.toml'), 'utf8'),
      );
      expect(existsSync(join(prefix, 'opt/ssc/src/cli.ts'))).toBe(true);
      expect(existsSync(join(prefix, 'opt/ssc/src/stale-file.ts'))).toBe(false);

      const before = snapshotTree(prefix);
      const dry = install('--dry-run', '--prefix', prefix, '--no-user', '--skip-deps', '--firewall');
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('node keys present');
      expect(dry.stdout).not.toContain('keygen');
      expect(snapshotTree(prefix)).toEqual(before);
    });

    test(
      'the installed unit verifies against the installed tree',
      () => {
        const root = join(work, 'verify-root');
        cpSync(prefix, root, { recursive: true, verbatimSymlinks: true });
        mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
        cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
        const unit = join(root, 'etc/systemd/system/streamlined-secure-comms.service');
        const result = run(['systemd-analyze', 'verify', `--root=${root}`, unit]);
        expect(result.stderr + result.stdout).toBe('');
        expect(result.code).toBe(0);
      },
    );
  });
});
