/**
 * The public hosts Microsoft spreads OneDrive over. The emulator answers all of them on one
 * loopback port (telling them apart by Host header and by path), and a client pointed at the
 * emulator rewrites exactly these.
 */

/** Graph API. */
export const GRAPH_HOST = 'graph.microsoft.com';
/** Identity platform (MSAL's authority host) and its aliases. */
export const LOGIN_HOSTS = ['login.microsoftonline.com', 'login.microsoft.com', 'login.windows.net'];
/**
 * Where pre-authenticated upload and download URLs point: api.onedrive.com and *.1drv.com for
 * OneDrive Personal, {tenant}-my.sharepoint.com for OneDrive for Business.
 */
export const CONTENT_HOST = /^(api\.onedrive\.com|([a-z0-9-]+\.)+1drv\.com|[a-z0-9-]+(-my)?\.sharepoint\.com)$/i;

/** The host an upload URL names when the client came in on a public host. */
export const PUBLIC_UPLOAD_HOST = 'api.onedrive.com';
/** The host a download URL names when the client came in on a public host. */
export const PUBLIC_DOWNLOAD_HOST = 'public.dm.files.1drv.com';

/** True for every host of Microsoft's that the emulator stands in for. */
export function isMicrosoftHost(host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, '');
  return h === GRAPH_HOST || LOGIN_HOSTS.includes(h) || CONTENT_HOST.test(h);
}
