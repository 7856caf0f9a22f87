/** The shared relay suite on the embedded backends (memory broker + SQLite store). */
import { embeddedFactory } from './harness.ts';
import { relaySuite } from './suite.ts';

relaySuite(embeddedFactory);
