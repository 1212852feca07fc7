/**
 * Deletes a file in an emulator the way another client of the cloud would (a user in the web
 * page): through the provider's documented delete call, by the id `stat` reports.
 * - Drive: `DELETE /drive/v3/files/{fileId}` (https://developers.google.com/drive/api/reference/rest/v3/files/delete)
 * - Dropbox: `POST /2/files/delete_v2` (https://www.dropbox.com/developers/documentation/http/documentation#files-delete)
 * - Box: `DELETE /2.0/files/{file_id}` (https://developer.box.com/reference/delete-files-id/)
 * - OneDrive: `DELETE /me/drive/items/{item-id}` (https://learn.microsoft.com/en-us/graph/api/driveitem-delete)
 */
import type { Target } from '../../src/targets/target.js';
import type { BoxEmulator } from '../emulators/box/index.js';
import type { DropboxEmulator } from '../emulators/dropbox/index.js';
import { rpc } from '../emulators/dropbox/raw.js';
import type { GdriveEmulator } from '../emulators/gdrive/index.js';
import type { OneDriveEmulator } from '../emulators/onedrive/index.js';

export type AnyEmulator =
  | { kind: 'gdrive'; emu: GdriveEmulator }
  | { kind: 'dropbox'; emu: DropboxEmulator }
  | { kind: 'box'; emu: BoxEmulator }
  | { kind: 'onedrive'; emu: OneDriveEmulator };

async function send(url: string, init: RequestInit): Promise<void> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`delete answered ${res.status}`);
}

/** Deletes the file `target` holds at `remotePath`; throws when there is none. */
export async function deleteRemote(e: AnyEmulator, target: Target, remotePath: string): Promise<void> {
  const st = await target.stat(remotePath);
  if (!st) throw new Error(`nothing at ${remotePath} to delete`);
  const id = encodeURIComponent(st.remoteId);
  switch (e.kind) {
    case 'gdrive':
      return send(`${e.emu.url}/drive/v3/files/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${e.emu.issueAccessToken()}` } });
    case 'dropbox': {
      const res = await rpc(`${e.emu.url}/api`, e.emu.accessToken(), 'files/delete_v2', { path: st.remoteId });
      if (res.status !== 200) throw new Error(`delete_v2 answered ${res.status}`);
      return;
    }
    case 'box':
      return send(`${e.emu.url}/2.0/files/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${e.emu.issueTokens().accessToken}` } });
    case 'onedrive':
      return send(`${e.emu.url}/v1.0/me/drive/items/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${e.emu.issueAccessToken()}` } });
  }
}
