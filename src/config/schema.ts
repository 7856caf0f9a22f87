/**
 * The configuration schema: one zod tree that is at once the typed `Config`, its defaults and
 * its validation. Every key is documented in `config/development.toml` and
 * `config/production.toml`. Sections belong to the rooms of `src/` that read them.
 */
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const serverSchema = z
  .object({
    /** Address the public port binds to. */
    host: z.string().min(1).default('0.0.0.0'),
    /** Public port (channels, HTTP API, ETSI 014). 0 picks a free port. */
    port: port.default(3000),
    /** Address of the ops port (metrics, probes, dashboard). */
    metricsHost: z.string().min(1).default('127.0.0.1'),
    /** Ops port. 0 picks a free port. */
    metricsPort: port.default(9090),
    /** Also serve /metrics on the public port. */
    publicMetrics: z.boolean().default(false),
    /** Directory for the SQLite store, keys and TOFU pins. */
    dataDir: z.string().min(1).default('./data'),
    /** Deadline for a graceful drain on SIGTERM/SIGINT, in milliseconds. */
    shutdownDeadlineMs: positiveInt.default(10_000),
    /**
     * On SIGTERM, report not-ready for this long before closing listeners, so load balancers
     * (Kubernetes endpoints) stop routing new clients first. Milliseconds.
     */
    drainDelayMs: z.number().int().min(0).default(0),
    /** Maximum HTTP request body, in bytes. */
    bodyLimitBytes: positiveInt.default(1_048_576),
    /** Per-request timeout for HTTP routes (not streams), in milliseconds. */
    requestTimeoutMs: positiveInt.default(15_000),
    /** Origins allowed by CORS; empty means same-origin only. */
    corsOrigins: z.array(z.string()).default([]),
    tls: z
      .object({
        /** PEM certificate file; TLS is on when cert and key are both set. */
        cert: z.string().optional(),
        key: z.string().optional(),
        /** PEM CA bundle used to verify client certificates (mTLS for ETSI 014). */
        ca: z.string().optional(),
        /** Ask clients for a certificate (mTLS). */
        requestClientCert: z.boolean().default(false),
      })
      .default({ requestClientCert: false }),
  })
  .strict();

export const logSchema = z
  .object({
    level: logLevel.default('info'),
    /** Directory of the combined, error and audit streams; empty disables files. */
    dir: z.string().default('./logs'),
    /** Pretty console output (development). */
    pretty: z.boolean().default(false),
    /** Also write JSON lines to stdout. */
    console: z.boolean().default(true),
    rotation: z
      .object({
        frequency: z.enum(['daily', 'hourly', 'none']).default('daily'),
        /** Rotate when a file passes this size, e.g. "10m", "1g". */
        size: z.string().regex(/^\d+[kmg]?$/i, 'a size like 10m or 1g').default('50m'),
        /** Rolled files kept per stream. */
        keep: positiveInt.default(14),
        /** Gzip rolled files. */
        compress: z.boolean().default(true),
      })
      .default({ frequency: 'daily', size: '50m', keep: 14, compress: true }),
  })
  .strict();

export const observabilitySchema = z
  .object({
    /** Interval of component health checks, in seconds. */
    healthIntervalSeconds: positiveInt.default(30),
    statusLine: z
      .object({
        /** Seconds between console status lines; 0 disables. */
        intervalSeconds: z.number().int().min(0).default(0),
      })
      .default({ intervalSeconds: 0 }),
    /** Interval of metric history snapshots, in seconds. */
    historyIntervalSeconds: positiveInt.default(10),
    /** Event-loop lag (ms) above which /live fails. */
    liveLagLimitMs: positiveInt.default(5_000),
  })
  .strict();

export const cryptoSchema = z
  .object({
    /** Backend per primitive; `auto` picks the fastest the runtime supports. */
    aead: z.enum(['auto', 'wasm', 'native', 'noble']).default('auto'),
    kem: z.enum(['auto', 'native', 'noble']).default('auto'),
    signer: z.enum(['auto', 'native', 'noble']).default('auto'),
    dh: z.enum(['auto', 'native', 'noble']).default('auto'),
    /** Use the SIMD build of the WASM module when the runtime validates it. */
    wasmSimd: z.boolean().default(true),
  })
  .strict();

export const channelSchema = z
  .object({
    /** Accept classical-only (non-hybrid) Noise protocols. For interop testing only. */
    allowClassical: z.boolean().default(false),
    /** Time allowed to finish a handshake, in milliseconds. */
    handshakeTimeoutMs: positiveInt.default(10_000),
    /** Largest transport frame, in bytes. */
    maxFrameBytes: positiveInt.default(65_536),
    /** Rekey after this many messages in one direction. */
    rekeyMessages: positiveInt.default(1_048_576),
    /** Rekey after this many seconds. */
    rekeySeconds: positiveInt.default(600),
    /** Close idle connections after this many seconds. */
    idleTimeoutSeconds: positiveInt.default(120),
    /** How clients authenticate: none, bearer token, or their own ML-DSA-65 identity. */
    clientAuth: z.enum(['none', 'token', 'mutual']).default('none'),
    /** Accepted bearer tokens when clientAuth = "token". */
    tokens: z.array(z.string().min(16)).default([]),
    /** Client fingerprints allowed when clientAuth = "mutual"; empty allows any verified identity. */
    allowedClients: z.array(z.string()).default([]),
    /** Maximum concurrent connections per node. */
    maxConnections: positiveInt.default(5_000),
    /** Bytes buffered for a slow consumer before it is disconnected. */
    sendQueueBytes: positiveInt.default(4_194_304),
  })
  .strict();

export const relaySchema = z
  .object({
    historyMaxCount: positiveInt.default(1_000),
    historyMaxAgeSeconds: positiveInt.default(86_400),
    /** Pending direct messages kept per offline identity. */
    queueMaxCount: positiveInt.default(10_000),
    maxTopicsPerConnection: positiveInt.default(256),
    /** Private topics (prefix `private:`) and the fingerprints allowed to use them. */
    privateTopics: z.record(z.string(), z.array(z.string())).default({}),
    /**
     * Issuers whose signed grants open private topics: fingerprint → base64 ML-DSA-65 public
     * key. This node's own identity is always an issuer (`ssc grant`).
     */
    grantIssuers: z.record(z.string().regex(/^[0-9a-f]{64}$/, 'a fingerprint (64 hex)'), z.string().min(1)).default({}),
  })
  .strict();

export const brokerSchema = z
  .object({
    /** `memory` (embedded, with SQLite store) or `redis` (several nodes). */
    type: z.enum(['memory', 'redis']).default('memory'),
    /**
     * Embedded store durability: `full` fsyncs every group commit (an acknowledged message
     * survives power loss); `normal` (SQLite WAL synchronous=NORMAL) survives a process crash but
     * not an OS crash or power loss, and takes the fsync off the message path.
     */
    sqliteSynchronous: z.enum(['full', 'normal']).default('full'),
    redis: z
      .object({
        url: z.string().default('redis://127.0.0.1:6379'),
        keyPrefix: z.string().default('ssc:'),
        commandTimeoutMs: positiveInt.default(2_000),
      })
      .default({ url: 'redis://127.0.0.1:6379', keyPrefix: 'ssc:', commandTimeoutMs: 2_000 }),
  })
  .strict();

export const clusterSchema = z
  .object({
    /** Seconds between this node's signed heartbeats (and peer verification); peers expire after 3. */
    heartbeatSeconds: positiveInt.default(5),
    /**
     * How peers' ML-DSA-65 heartbeat keys are trusted: `configured` accepts only `trustedKeys`;
     * `tofu` pins each node id to the first key it presents (pins under `server.dataDir`).
     */
    trust: z.enum(['configured', 'tofu']).default('tofu'),
    /** Node keys: fingerprint (SHA-256 hex of the public key) → base64 ML-DSA-65 public key. */
    trustedKeys: z
      .record(z.string().regex(/^[0-9a-f]{64}$/, 'a 64-hex fingerprint'), z.string().min(1))
      .default({}),
    /** Address peers and the dashboard show for this node (default: the public URL). */
    advertiseAddress: z.string().default(''),
  })
  .strict();

export const qkdLinkSchema = z
  .object({
    masterSae: z.string().min(1),
    slaveSae: z.string().min(1),
    /** Fibre length, km. */
    distanceKm: z.number().min(0).max(500).default(50),
    /** Fibre attenuation, dB/km. */
    alphaDbPerKm: z.number().positive().default(0.21),
    /** Bob's detection efficiency (0..1). */
    etaBob: z.number().gt(0).max(1).default(0.045),
    /** Misalignment error probability (0..0.5). */
    eDet: z.number().min(0).max(0.5).default(0.033),
    /** Dark-count yield per pulse. */
    y0: z.number().min(0).max(1).default(1.7e-6),
    /** Signal and decoy intensities (mean photons per pulse). */
    mu: z.number().positive().default(0.48),
    nu: z.number().positive().default(0.05),
    /** Source pulse rate, Hz. */
    pulseRateHz: z.number().positive().default(1e9),
    /** Pulses per simulated block. */
    blockPulses: z.number().int().positive().default(100_000_000),
    /** Fraction of pulses an intercept-resend eavesdropper measures (0 = none). */
    eve: z.number().min(0).max(1).default(0),
    /** Simulate at the source's real pace or as fast as possible. */
    pace: z.enum(['realtime', 'fast']).default('realtime'),
    /** Keys kept in the pool. */
    maxKeys: positiveInt.default(25_000),
  })
  .strict();

export const qkdSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** This KME's identifier. */
    kmeId: z.string().default('KME_A'),
    /** Default key size, bits. */
    keySize: positiveInt.default(256),
    maxKeyPerRequest: positiveInt.default(128),
    minKeySize: positiveInt.default(64),
    maxKeySize: positiveInt.default(1024),
    /** Bearer token per SAE ID when TLS client certificates are not used. */
    saeTokens: z.record(z.string(), z.string().min(16)).default({}),
    /**
     * Serve the ETSI GS QKD 014 API on its own mutual-TLS port, the SAE ID taken from the client
     * certificate's subject CN (needs server.tls.cert, key and ca).
     */
    mtls: z
      .object({
        enabled: z.boolean().default(false),
        host: z.string().min(1).default('0.0.0.0'),
        port: port.default(8444),
      })
      .strict()
      .default({ enabled: false, host: '0.0.0.0', port: 8444 }),
    links: z.array(qkdLinkSchema).default([]),
  })
  .strict();

export const securitySchema = z
  .object({
    /** Token for admin routes and the dashboard; empty disables them. */
    adminToken: z.string().default(''),
    rateLimit: z
      .object({
        /** HTTP requests per IP per window. */
        httpPerIp: positiveInt.default(600),
        /** Handshakes per IP per window. */
        handshakesPerIp: positiveInt.default(60),
        /** Frames per connection per window. */
        framesPerConnection: positiveInt.default(60_000),
        /** Frames per client identity per window, across all of its connections on this node. */
        framesPerIdentity: positiveInt.default(120_000),
        windowSeconds: positiveInt.default(60),
      })
      .default({ httpPerIp: 600, handshakesPerIp: 60, framesPerConnection: 60_000, framesPerIdentity: 120_000, windowSeconds: 60 }),
    bans: z
      .object({
        /** Suspicious events from one source within the window that trigger a ban. */
        threshold: positiveInt.default(20),
        windowSeconds: positiveInt.default(60),
        banSeconds: positiveInt.default(900),
      })
      .default({ threshold: 20, windowSeconds: 60, banSeconds: 900 }),
    /** Seconds between entropy health tests. */
    entropyIntervalSeconds: positiveInt.default(300),
    /** Audit records between signed checkpoints. */
    auditCheckpointEvery: positiveInt.default(100),
  })
  .strict();

export const alertRuleSchema = z
  .object({
    name: z.string().min(1),
    /** Series of the sampled snapshot, e.g. `cpu_percent`, `memory_percent`, `http_error_rate`. */
    metric: z.string().min(1),
    op: z.enum(['>', '>=', '<', '<=', '==', '!=']).default('>'),
    threshold: z.number(),
    forSeconds: z.number().min(0).default(60),
    severity: z.enum(['warning', 'degraded', 'critical', 'down']).default('warning'),
    cooldownSeconds: z.number().min(0).default(300),
    /** Raise severity one step after the condition holds this many more evaluations; 0 = never. */
    escalateAfter: z.number().int().min(0).default(0),
    action: z.string().default(''),
    /** False switches the rule (e.g. a default of the same name) off. */
    enabled: z.boolean().default(true),
  })
  .strict();

export const alertsSchema = z
  .object({
    enabled: z.boolean().default(true),
    evaluateIntervalSeconds: positiveInt.default(10),
    /** Rules in addition to (or, by name, replacing) the defaults. */
    rules: z.array(alertRuleSchema).default([]),
    webhookUrl: z.string().default(''),
    email: z
      .object({
        host: z.string().default(''),
        port: port.default(25),
        secure: z.boolean().default(false),
        from: z.string().default(''),
        to: z.array(z.string()).default([]),
      })
      .default({ host: '', port: 25, secure: false, from: '', to: [] }),
  })
  .strict();

export const configSchema = z
  .object({
    env: z.enum(['development', 'production', 'test']).default('development'),
    /** Identifier of this node in the cluster view; defaults to the host name. */
    nodeId: z.string().default(''),
    server: serverSchema.default(serverSchema.parse({})),
    log: logSchema.default(logSchema.parse({})),
    observability: observabilitySchema.default(observabilitySchema.parse({})),
    crypto: cryptoSchema.default(cryptoSchema.parse({})),
    channel: channelSchema.default(channelSchema.parse({})),
    relay: relaySchema.default(relaySchema.parse({})),
    broker: brokerSchema.default(brokerSchema.parse({})),
    cluster: clusterSchema.default(clusterSchema.parse({})),
    qkd: qkdSchema.default(qkdSchema.parse({})),
    security: securitySchema.default(securitySchema.parse({})),
    alerts: alertsSchema.default(alertsSchema.parse({})),
  })
  .strict();

/** The effective, validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** A partial configuration, as written in a TOML file. */
export type ConfigInput = z.input<typeof configSchema>;
