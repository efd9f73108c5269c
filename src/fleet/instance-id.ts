/** The default instance id: one random id per process, shared by every client of the process. */
import { randomUUID } from 'node:crypto';

let processId: string | undefined;

/** Made on first use, so that importing the package costs nothing (a UUID matches INSTANCE_ID_PATTERN). */
export function processInstanceId(): string {
  processId ??= randomUUID();
  return processId;
}
