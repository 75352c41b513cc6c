// Portico's own error responses. They say what happened in general terms and never carry
// anything from the backend (no stack trace, no target address).
import { STATUS_CODES } from 'node:http';

const DETAIL: Record<number, string> = {
  400: 'The request could not be understood.',
  404: 'No route matches this request.',
  408: 'The request took too long to arrive.',
  413: 'The request body is larger than this server accepts.',
  431: 'The request headers are larger than this server accepts.',
  500: 'Something went wrong inside the proxy.',
  502: 'The upstream server could not be reached or sent an invalid response.',
  503: 'No upstream server is available to handle this request.',
  504: 'The upstream server did not answer in time.',
};

export interface ErrorBody { html: string; json: string }

const cache = new Map<number, ErrorBody>();

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Bodies are built once per status and reused. */
export function errorBody(status: number): ErrorBody {
  let body = cache.get(status);
  if (!body) {
    const reason = STATUS_CODES[status] ?? 'Error';
    const detail = DETAIL[status] ?? reason;
    body = {
      html: `<!doctype html><html><head><meta charset="utf-8"><title>${status} ${escapeHtml(reason)}</title>` +
        `<style>body{font:16px/1.5 system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}` +
        `h1{font-size:1.4em}small{color:#777}</style></head><body><h1>${status} ${escapeHtml(reason)}</h1>` +
        `<p>${escapeHtml(detail)}</p><hr><small>portico</small></body></html>\n`,
      json: JSON.stringify({ error: { status, reason, message: detail } }) + '\n',
    };
    cache.set(status, body);
  }
  return body;
}

/** JSON when the client asks for it and does not prefer HTML. */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.indexOf('json');
  if (json === -1) return false;
  const html = accept.indexOf('text/html');
  return html === -1 || json < html;
}
