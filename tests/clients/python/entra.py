"""Python Entra ID clients against the simulator through the TLS front (run by ../run.sh).

msal (ConfidentialClientApplication) and azure-identity (ClientSecretCredential), configured as an
app would be against the real tenant: the authority https://login.microsoftonline.com/<tenant>
and a client secret. Same output as the node scripts: one `ok|FAIL <name>: <detail>` line per
check; exit 0 (all ok) or 3 (some check failed). Never prints a token or the secret.
"""

import json
import os
import re
import sys
import threading

CHECK_TIMEOUT = float(os.environ.get("CHECK_TIMEOUT_MS", "60000")) / 1000
FRONT_LOG = os.environ.get("FRONT_LOG", "")
TENANT = os.environ["TENANT_ID"]
CLIENT_ID = os.environ["CLIENT_ID"]
AUTHORITY = f"{os.environ.get('AUTHORITY_HOST', 'https://login.microsoftonline.com')}/{TENANT}"
DATAVERSE = os.environ["DATAVERSE_URL"]
FNO = os.environ["FNO_URL"]

failures = 0


def secret():
    return os.environ["CLIENT_SECRET"]


def read_log():
    if not FRONT_LOG or not os.path.exists(FRONT_LOG):
        return []
    with open(FRONT_LOG, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(entries, limit=8):
    lines = []
    for e in entries:
        path = e["path"] if len(e["path"]) <= 140 else e["path"][:140] + "..."
        lines.append(f"{e['method']} {e['host']}{path} -> {e['status']}")
    folded = []
    for line in lines:
        if folded and folded[-1][0] == line:
            folded[-1][1] += 1
        else:
            folded.append([line, 1])
    shown = [f"{l} (x{n})" if n > 1 else l for l, n in folded[-limit:]]
    hidden = len(folded) - len(shown)
    return (f"[{hidden} earlier] " if hidden > 0 else "") + "; ".join(shown)


def one_line(s):
    return re.sub(r"\s+", " ", str(s)).strip()[:900]


def check(name, fn):
    """Runs fn (returns a detail, raises on failure) with a deadline; prints one line."""
    global failures
    mark = len(read_log())
    box = {}

    def run():
        try:
            box["ok"] = fn()
        except BaseException as e:  # noqa: BLE001 - every failure is a FAIL line
            box["err"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(CHECK_TIMEOUT)
    if t.is_alive():
        box["err"] = TimeoutError(f"no answer within {CHECK_TIMEOUT:.0f} s")
    wire = read_log()[mark:]
    if "err" in box:
        failures += 1
        e = box["err"]
        tail = f"wire: {summarise(wire)}" if wire else "wire: no request in this check"
        print(f"FAIL {name}: {one_line(f'{type(e).__name__}: {e}')} | {one_line(tail)}", flush=True)
    else:
        print(f"ok {name}: {one_line(box.get('ok') or '')} | wire: {one_line(summarise(wire))}", flush=True)


def msal_token(resource):
    import msal

    app = msal.ConfidentialClientApplication(CLIENT_ID, authority=AUTHORITY, client_credential=secret())
    r = app.acquire_token_for_client(scopes=[f"{resource}/.default"])
    if "access_token" not in r:
        raise RuntimeError(f"{r.get('error')}: {one_line(r.get('error_description', ''))[:300]}")
    return f"token_type {r.get('token_type')}, expires_in {r.get('expires_in')}"


def msal_bad_resource():
    import msal

    app = msal.ConfidentialClientApplication(CLIENT_ID, authority=AUTHORITY, client_credential=secret())
    r = app.acquire_token_for_client(scopes=["https://nosuchorg.crm.dynamics.com/.default"])
    if "access_token" in r:
        raise RuntimeError("a token was issued for a resource the tenant does not have")
    if r.get("error") != "invalid_resource" or "AADSTS500011" not in r.get("error_description", ""):
        raise RuntimeError(f"{r.get('error')} {one_line(r.get('error_description', ''))[:200]} (Entra answers invalid_resource AADSTS500011)")
    return "invalid_resource AADSTS500011"


def identity_token(resource):
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(TENANT, CLIENT_ID, secret())
    t = cred.get_token(f"{resource}/.default")
    if not t.token:
        raise RuntimeError("no token")
    return f"expires_on {t.expires_on}"


def msal_unknown_tenant():
    import msal

    authority = AUTHORITY.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-00000000dead"
    try:
        msal.ConfidentialClientApplication(CLIENT_ID, authority=authority, client_credential=secret())
    except ValueError as e:
        return f"refused at discovery: {one_line(e)[:80]}"
    raise RuntimeError("msal accepted a tenant that does not exist")


check("py.msal.token.dataverse", lambda: msal_token(DATAVERSE))
check("py.msal.token.fno", lambda: msal_token(FNO))
check("py.msal.error.unknown-resource", msal_bad_resource)
check("py.msal.error.unknown-tenant", msal_unknown_tenant)
check("py.azure-identity.token.dataverse", lambda: identity_token(DATAVERSE))
check("py.azure-identity.token.fno", lambda: identity_token(FNO))

sys.stdout.flush()
os._exit(3 if failures else 0)
