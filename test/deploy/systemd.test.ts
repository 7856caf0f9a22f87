import { describe, expect, test } from 'bun:test';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand, parseUnit, productionConfig, run, unitPath } from './deploy-files.ts';

const text = readFileSync(unitPath, 'utf8');
const unit = parseUnit(text);
const service = unit.Service ?? {};
const one = (key: string) => {
  const values = service[key];
  if (!values) throw new Error(`[Service] ${key} is missing`);
  return values[values.length - 1]!;
};
const config = productionConfig();

/** systemd.time(7) spans as used here: "20", "20s", "2min", "1min 30s". */
function seconds(span: string): number {
  let total = 0;
  for (const [, n, unitName] of span.matchAll(/(\d+)\s*(ms|s|sec|min|m|h)?/g)) {
    const factor = { ms: 0.001, s: 1, sec: 1, min: 60, m: 60, h: 3600 }[unitName ?? 's'] ?? 1;
    total += Number(n) * factor;
  }
  return total;
}

/**
 * `systemd-analyze verify` in a throw-away root that holds the system's own units (for
 * sysinit.target & co), the unit under test and an executable at its ExecStart path. Returns
 * the tool's output; the unit is clean when it exits 0 and prints nothing.
 */
function verifyInRoot(unitText: string) {
  const root = mkdtempSync(join(tmpdir(), 'ssc-systemd-'));
  try {
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'opt/ssc/bin'), { recursive: true });
    writeFileSync(join(root, 'opt/ssc/bin/ssc'), '#!/bin/sh\n');
    chmodSync(join(root, 'opt/ssc/bin/ssc'), 0o755);
    const installed = join(root, 'etc/systemd/system/streamlined-secure-comms.service');
    writeFileSync(installed, unitText);
    return run(['systemd-analyze', 'verify', `--root=${root}`, installed]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const haveSystemdAnalyze = hasCommand('systemd-analyze');

describe('systemd unit', () => {
  test('has every hardening directive the deployment requires', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      RestrictNamespaces: 'yes',
      // Empty: 8443 and 9090 need no capability at all.
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      Restart: 'on-failure',
      KillSignal: 'SIGTERM',
      SystemCallArchitectures: 'native',
    };
    for (const [key, value] of Object.entries(expected))
      expect({ key, value: one(key) }).toEqual({ key, value });
    expect(one('RestrictAddressFamilies').split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(service.SystemCallFilter).toContain('@system-service');
    // The JIT needs W^X off: the one directive that must not be there.
    expect(service.MemoryDenyWriteExecute).toBeUndefined();
  });

  test('runs as the dedicated user with secrets from an environment file', () => {
    expect(one('User')).toBe('ssc');
    expect(one('Group')).toBe('ssc');
    expect(service.EnvironmentFile).toEqual(['-/etc/ssc/ssc.env']);
    expect(service.Environment).toContain('NODE_ENV=production');
    expect(one('ExecStart')).toBe('/opt/ssc/bin/ssc serve --config /etc/ssc/production.toml');
  });

  test('may write the data and log directories of the production config, and nothing else', () => {
    expect(one('ReadWritePaths').split(/\s+/).sort()).toEqual([config.server.dataDir, config.log.dir].sort());
    const otherWritable = [
      'StateDirectory',
      'LogsDirectory',
      'CacheDirectory',
      'RuntimeDirectory',
      'ReadWriteDirectories',
    ];
    expect(Object.keys(service).filter((key) => otherWritable.includes(key))).toEqual([]);
  });

  test('has file descriptors for 5000+ connections and a stop timeout above the drain deadline', () => {
    expect(config.channel.maxConnections).toBeGreaterThanOrEqual(5000);
    // Every connection is one descriptor; Redis, log files and the listeners need more.
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(config.channel.maxConnections * 2);
    const stop = seconds(one('TimeoutStopSec'));
    const deadline = config.server.shutdownDeadlineMs / 1000;
    expect(config.server.drainDelayMs / 1000).toBeLessThan(deadline);
    // Margin for closing sockets and flushing logs after the deadline, before SIGKILL.
    expect(stop).toBeGreaterThanOrEqual(deadline + 5);
    expect(stop).toBeLessThanOrEqual(deadline + 30);
  });

  test('does not restart on an invalid configuration (exit 2)', () => {
    expect(one('RestartPreventExitStatus')).toBe('2');
    expect(unit.Install?.WantedBy).toEqual(['multi-user.target']);
  });

  test('systemd-analyze verify accepts the unit without a warning', () => {
    const result = verifyInRoot(text);
    expect(result.stderr + result.stdout).toBe('');
    expect(result.code).toBe(0);
  });

  test(
    'systemd-analyze verify would catch a broken unit (the check is real)',
    () => {
      const broken = text.replace('SystemCallFilter=@system-service', 'SystemCallFilter=@no-such-group');
      const result = verifyInRoot(`${broken}\nNoSuchDirective=1\n`);
      expect(result.stderr).toContain('@no-such-group');
      expect(result.stderr).toContain('NoSuchDirective');
    },
  );
});
