/**
 * How the cloud targets' own transports reach the internet through a proxy: `HTTPS_PROXY` for
 * https URLs, `HTTP_PROXY` for http ones, `NO_PROXY` to go direct (the usual variables, either
 * case, read for each request by proxy-from-env). A proxied request goes through a CONNECT
 * tunnel (https-proxy-agent), whatever its scheme: the tunnel goes to the host the request really
 * connects to, also when a request is sent elsewhere with its original Host header (the
 * OneDrive target's `endpoints`).
 *
 * Who takes it: the kit's fetch (./fetch.ts: every request of the Box, Dropbox and Drive
 * targets; Drive's gaxios passes its own tunnel agent when the variables name a proxy) and the
 * OneDrive target's node:http exchange (Graph, MSAL and the upload URLs). Requests no proxy
 * applies to use Node's global agents, which keep their connections alive.
 */
import http from 'node:http';
import https from 'node:https';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

/** One tunnel agent per proxy URL (they keep their connections alive). */
const tunnels = new Map<string, HttpsProxyAgent<string>>();

/** Every variable proxy-from-env reads (it tries each in lower case, then in upper case). */
const PROXY_VARS = ['npm_config_https_proxy', 'https_proxy', 'npm_config_http_proxy', 'http_proxy', 'npm_config_proxy', 'all_proxy', 'npm_config_no_proxy', 'no_proxy']
  .flatMap((k) => [k, k.toUpperCase()]);

/** The agents chosen so far, by origin, for the proxy variables' values in `decidedFor`. */
const decided = new Map<string, http.Agent>();
let decidedFor = '';

/** The agent for a request that connects to `url`: a tunnel through the proxy the environment names for it, or Node's global agent. */
export function agentFor(url: URL): http.Agent {
  let env = '';
  for (const k of PROXY_VARS) env += `${process.env[k] ?? ''}\n`;
  if (env !== decidedFor) {
    decided.clear();
    decidedFor = env;
  }
  const origin = `${url.protocol}//${url.host}`;
  let agent = decided.get(origin);
  if (agent === undefined) {
    agent = decide(url);
    decided.set(origin, agent);
  }
  return agent;
}

function decide(url: URL): http.Agent {
  const proxy = getProxyForUrl(url.href);
  if (!proxy) return url.protocol === 'https:' ? https.globalAgent : http.globalAgent;
  let agent = tunnels.get(proxy);
  if (!agent) {
    agent = new HttpsProxyAgent(proxy, { keepAlive: true });
    tunnels.set(proxy, agent);
  }
  return agent;
}
