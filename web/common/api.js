// The govflow REST API as pages call it: a bearer token (kept for the browser tab only) and
// RFC 9457 problem details turned into errors with the server's own words.

const TOKEN_KEY = 'govflow.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An API refusal: `status`, the problem's `title`/`detail`, and `issues` for an invalid pack. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.issues = problem.issues || [];
  }
}

/**
 * Call the API. `body` may be an object (sent as JSON) or a Blob/ArrayBuffer/Uint8Array
 * (sent as is, with `type`). Returns the parsed JSON, the text (`as: 'text'`) or null (204).
 */
export async function api(path, { method = 'GET', body, type, as = 'json', headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
      init.body = body;
      init.headers['Content-Type'] = type || 'application/octet-stream';
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { title: 'network', detail: String(err.message || err) });
  }
  if (!response.ok) {
    let problem = { title: response.statusText, status: response.status };
    try {
      problem = await response.json();
    } catch {
      // not a problem document
    }
    throw new ApiError(response.status, problem);
  }
  if (response.status === 204) return null;
  return as === 'text' ? response.text() : response.json();
}
