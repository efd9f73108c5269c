/** `@central-hub/config/wire`: the wire contract's schemas, for people who build or test hubs. */
export {
  configDocumentSchema,
  DEFAULT_SUBJECT_PREFIX,
  epochMsSchema,
  errorBodySchema,
  historyActionSchema,
  historyEntrySchema,
  historyResponseSchema,
  isForbiddenKey,
  isValidServiceName,
  noticeSchema,
  broadcastStatusSchema,
  SERVICE_NAME_MAX_LENGTH,
  SERVICE_NAME_PATTERN,
  serviceNameSchema,
  subjectFor,
  VERSION_MAX_LENGTH,
  wireConfigSchema,
  writeResponseSchema,
} from './hub/wire.js';
export {
  canonicalJson,
  loadNoticePrivateKey,
  loadNoticePublicKey,
  NOTICE_KEY_ID_PATTERN,
  NOTICE_SIGNATURE_CONTEXT,
  noticeKeyIdFor,
  noticeSigningInput,
  signNotice,
  verifyNoticeSignature,
} from './hub/notice-signature.js';
export type { NoticeSignatureCheck } from './hub/notice-signature.js';
export type {
  BroadcastStatus,
  ConfigDocument,
  ConfigObject,
  ErrorBody,
  HistoryAction,
  HistoryResponse,
  Notice,
  WriteResponse,
} from './hub/wire.js';
