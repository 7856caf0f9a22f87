import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envToTree, loadConfig, redactConfig } from '../../src/config/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ssc-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const errorOf = (fn: () => unknown): ConfigError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

describe('config', () => {
  test('defaults when nothing is given', () => {
    const config = loadConfig({ env: {}, configDir: dir });
    expect(config.env).toBe('development');
    expect(config.server.port).toBe(3000);
    expect(config.server.metricsPort).toBe(9090);
    expect(config.broker.type).toBe('memory');
    expect(config.channel.allowClassical).toBe(false);
    expect(config.server.shutdownDeadlineMs).toBe(10_000);
  });

  test('the shipped development and production files are valid and differ where they should', () => {
    const dev = loadConfig({ env: { NODE_ENV: 'development' } });
    const prod = loadConfig({ env: { NODE_ENV: 'production' } });
    expect(dev.server.port).toBe(3000);
    expect(prod.server.port).toBe(8443);
    expect(prod.broker.type).toBe('redis');
    expect(prod.log.pretty).toBe(false);
  });

  test('precedence: defaults < TOML < env < overrides', () => {
    const toml = file('p.toml', '[server]\nport = 4000\nmetricsPort = 4001\ndataDir = "/tmp/x"\n[log]\nlevel = "warn"\n');
    const fromFile = loadConfig({ file: toml, env: {} });
    expect(fromFile.server.port).toBe(4000);
    expect(fromFile.log.level).toBe('warn');
    const fromEnv = loadConfig({ file: toml, env: { SSC_SERVER__PORT: '5000', SSC_LOG__LEVEL: 'error' } });
    expect(fromEnv.server.port).toBe(5000);
    expect(fromEnv.server.metricsPort).toBe(4001);
    expect(fromEnv.log.level).toBe('error');
    const fromFlags = loadConfig({ file: toml, env: { SSC_SERVER__PORT: '5000' }, overrides: { server: { port: 6000 } } });
    expect(fromFlags.server.port).toBe(6000);
    expect(fromFlags.server.dataDir).toBe('/tmp/x');
  });

  test('env names map to nested camelCase keys and JSON values', () => {
    expect(envToTree({ SSC_SERVER__METRICS_PORT: '9191', SSC_CHANNEL__TOKENS: '["aaaaaaaaaaaaaaaa"]', OTHER: 'x' })).toEqual({
      server: { metricsPort: 9191 },
      channel: { tokens: ['aaaaaaaaaaaaaaaa'] },
    });
    const config = loadConfig({ env: { SSC_CHANNEL__ALLOW_CLASSICAL: 'true', SSC_SECURITY__ADMIN_TOKEN: '1234' }, configDir: dir });
    expect(config.channel.allowClassical).toBe(true);
    expect(config.security.adminToken).toBe('1234');
  });

  test('NODE_ENV picks config/<env>.toml from the config dir', () => {
    file('staging.toml', 'env = "production"\n[server]\nport = 7000\n');
    expect(loadConfig({ env: { NODE_ENV: 'staging' }, configDir: dir }).server.port).toBe(7000);
  });

  test('a wrong type names the key, the value and what was expected', () => {
    const error = errorOf(() => loadConfig({ env: { SSC_SERVER__PORT: 'abc' }, configDir: dir }));
    expect(error.message).toContain('server.port');
    expect(error.message).toContain('"abc"');
    expect(error.message).toMatch(/expected number/);
    expect(error.message.split('\n')).toHaveLength(1);
  });

  test('out of range, bad enum, bad nested value, unknown key, bad TOML, missing file', () => {
    expect(errorOf(() => loadConfig({ env: { SSC_SERVER__PORT: '70000' }, configDir: dir })).message).toMatch(
      /server\.port = 70000: .*(<=|65535)/,
    );
    expect(errorOf(() => loadConfig({ env: { SSC_BROKER__TYPE: 'kafka' }, configDir: dir })).message).toMatch(
      /broker\.type = "kafka": .*memory.*redis/,
    );
    expect(errorOf(() => loadConfig({ env: { SSC_LOG__ROTATION__SIZE: 'big' }, configDir: dir })).message).toContain(
      'log.rotation.size = "big"',
    );
    expect(errorOf(() => loadConfig({ env: { SSC_SERVER__PROT: '1' }, configDir: dir })).message).toContain(
      'unknown key server.prot',
    );
    expect(errorOf(() => loadConfig({ file: file('bad.toml', '[server\nport = 1'), env: {} })).message).toContain(
      'not valid TOML',
    );
    expect(errorOf(() => loadConfig({ file: join(dir, 'missing.toml'), env: {} })).message).toContain('cannot read');
    expect(
      errorOf(() => loadConfig({ file: file('q.toml', '[[qkd.links]]\nmasterSae = "A"\nslaveSae = "B"\ndistanceKm = -1\n'), env: {} }))
        .message,
    ).toContain('qkd.links.0.distanceKm = -1');
  });

  test('redaction hides secrets but keeps the shape', () => {
    const config = loadConfig({
      env: { SSC_SECURITY__ADMIN_TOKEN: 'super-secret-admin', SSC_CHANNEL__TOKENS: '["0123456789abcdef0"]' },
      configDir: dir,
    });
    const redacted = JSON.stringify(redactConfig(config));
    expect(redacted).not.toContain('super-secret-admin');
    expect(redacted).not.toContain('0123456789abcdef0');
    expect(redacted).toContain('"adminToken":"[redacted]"');
    expect(redacted).toContain('"keySize":256');
  });
});
