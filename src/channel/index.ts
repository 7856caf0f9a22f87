/**
 * The channel room's door: the hybrid post-quantum Noise channel (DESIGN §4). Transports drive
 * a {@link HandshakeDriver} with bytes, then exchange frames through the {@link Session}.
 */
export {
  CHANNEL_ERROR_CODES,
  CHANNEL_ERROR_STATUS,
  ChannelError,
  type ChannelErrorCode,
  channelErrorStatus,
  isChannelError,
} from './errors.ts';
export {
  type ChannelCrypto,
  createInitiator,
  createResponder,
  type HandshakeDriver,
  type InitiatorOptions,
  type PeerInfo,
  type ResponderOptions,
  responderPolicyFromConfig,
} from './handshake.ts';
export {
  createMemoryPinStore,
  fingerprintOf,
  IDENTITY_LABEL,
  identityMessage,
  type IdentityKeyPair,
  isFingerprint,
  type PinStore,
} from './identity.ts';
export { decodePayload, encodePayload, type HandshakePayload, PayloadTag } from './payload.ts';
export {
  assertProtocolAllowed,
  DEFAULT_PROTOCOL,
  isClassical,
  isProtocolAllowed,
  PROTOCOLS,
  prologueFor,
  protocolId,
  WIRE_VERSION,
} from './protocols.ts';
export { REPLAY_WINDOW_SIZE, ReplayWindow } from './replay-window.ts';
export {
  BatchScratch,
  decodeClose,
  encodeClose,
  FRAME_HEADER_BYTES,
  FRAME_TAG_BYTES,
  FrameType,
  type OpenedFrame,
  openMany,
  parseFrameHeader,
  type PreparedFrame,
  type PreparedOpen,
  sealMany,
  Session,
  type SessionOptions,
} from './session.ts';
export { CipherState, encodeNonce, MAX_NONCE } from './noise/cipher-state.ts';
export { HandshakeState, type HandshakeStateOptions, type KeyPair, MAX_NOISE_MESSAGE } from './noise/handshake-state.ts';
export { formatPattern, type HandshakePattern, resolvePattern } from './noise/patterns.ts';
export { type NoisePrimitives, type NoiseProtocol, parseProtocolName, resolveProtocol } from './noise/protocol.ts';
export { SymmetricState } from './noise/symmetric-state.ts';
