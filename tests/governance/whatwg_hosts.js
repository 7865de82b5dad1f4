// The WHATWG reference for test_url_differential.py: Node's built-in URL (the URL standard).
// stdin: a JSON list of [kind, input]; stdout: a JSON list of host names (or null).
// Normalised as README says Warden normalises: one trailing dot dropped; the opaque host of a
// non-special scheme read as an http host. Nothing else of Warden's is used here.
"use strict";

const SPECIAL = new Set(["http:", "https:", "ws:", "wss:", "ftp:", "file:"]);

function trim(host) {
  if (!host) return null;
  return (host.endsWith(".") ? host.slice(0, -1) : host) || null;
}

function hostOf(input) {
  let url;
  try {
    url = new URL(input);
  } catch {
    return null;
  }
  if (!url.hostname) return null;
  if (!SPECIAL.has(url.protocol)) return hostOf("http://" + url.hostname) ?? trim(url.hostname.toLowerCase());
  return trim(url.hostname);
}

function domainOf(address) {
  return hostOf("http://" + address.slice(address.lastIndexOf("@") + 1));
}

function reference([kind, input]) {
  if (kind === "url") return hostOf(input);
  if (kind === "host") return hostOf("http://" + input);
  if (kind === "address") return domainOf(input);
  if (kind === "mailto") {
    let url;
    try {
      url = new URL(input);
    } catch {
      return null;
    }
    return domainOf(decodeURIComponent(url.pathname));
  }
  throw new Error("unknown kind " + kind);
}

let data = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (data += chunk));
process.stdin.on("end", () => process.stdout.write(JSON.stringify(JSON.parse(data).map(reference))));
