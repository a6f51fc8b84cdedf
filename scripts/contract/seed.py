"""Seeds a fresh hub with data for scripts/contract.sh and writes schemathesis's config.

Without existing ids, nearly every generated request for `/exams/{id}/…` or `/sessions/{id}/…`
ends in 404 and never reaches the handler's logic. So this makes, through the API itself:
candidates, a DRAFT, a PUBLISHED and an ARCHIVED exam with questions, assignments, one
STARTED and one SUBMITTED session, an uploaded artifact and a pairing token; then writes a
schemathesis.toml that gives each operation the token of a role allowed to call it (ADMIN,
or the candidate for the candidate-only operations) and offers the seeded ids as dictionary
values for its path parameters (with a probability, so generated ids are still tried).

Usage: seed.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_TOML   (standard library only)
"""

import datetime as dt
import json
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse, parse_qs

API = "/api/v1"
PASSWORD = "contract-password-1"
# PNG signature plus an IHDR chunk header: enough for the hub's magic-byte check.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


def call(base, method, path, token=None, body=None, raw=None, content_type="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + API + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        raise SystemExit(f"seed: {method} {path} -> {e.code} {e.read().decode()[:300]}")


def login(base, email, password):
    return call(base, "POST", "/auth/login", body={"email": email, "password": password})


def main():
    base, admin_email, admin_password, out = sys.argv[1:5]
    admin_login = login(base, admin_email, admin_password)
    admin, admin_id = admin_login["accessToken"], admin_login["user"]["id"]

    def user(email, role):
        body = {"email": email, "name": email.split("@")[0], "password": PASSWORD, "role": role}
        return call(base, "POST", "/users", admin, body)["id"]

    c1 = user("candidate1@example.com", "CANDIDATE")  # STARTED session S1
    c2 = user("candidate2@example.com", "CANDIDATE")  # SUBMITTED session S2
    c3 = user("candidate3@example.com", "CANDIDATE")  # assigned, no session; PATCH target
    proctor = user("proctor@example.com", "PROCTOR")  # PATCH target

    now = dt.datetime.now(dt.timezone.utc)
    window = {
        "durationMinutes": 60,
        "startsAt": (now - dt.timedelta(hours=1)).isoformat(),
        "endsAt": (now + dt.timedelta(days=1)).isoformat(),
    }

    def exam(title):
        return call(base, "POST", "/exams", admin, {"title": title, **window})["id"]

    def questions(exam_id):
        mcq = call(base, "POST", f"/exams/{exam_id}/questions", admin, {
            "type": "MCQ", "prompt": "2 + 2?", "points": 2,
            "options": [{"id": "a", "text": "4"}, {"id": "b", "text": "5"}],
            "answerKey": {"correct": ["a"]},
        })["id"]
        essay = call(base, "POST", f"/exams/{exam_id}/questions", admin,
                     {"type": "SUBJECTIVE", "prompt": "Why?", "points": 3})["id"]
        return [mcq, essay]

    draft = exam("Contract draft")
    q_draft = questions(draft)
    published = exam("Contract published")
    q_published = questions(published)
    call(base, "PUT", f"/exams/{published}/assignments", admin, {"candidateIds": [c1, c2, c3]})
    call(base, "POST", f"/exams/{published}/publish", admin)
    archived = exam("Contract archived")
    q_archived = questions(archived)
    call(base, "PUT", f"/exams/{archived}/assignments", admin, {"candidateIds": [c1]})
    call(base, "POST", f"/exams/{archived}/publish", admin)
    call(base, "POST", f"/exams/{archived}/archive", admin)

    cand1 = login(base, "candidate1@example.com", PASSWORD)["accessToken"]
    cand2 = login(base, "candidate2@example.com", PASSWORD)["accessToken"]
    s1 = call(base, "POST", f"/exams/{published}/sessions", cand1, {"deviceFingerprint": "contract-laptop-1"})["id"]
    call(base, "PUT", f"/sessions/{s1}/answers/{q_published[0]}", cand1,
         {"response": {"selected": ["a"]}, "version": 1})
    call(base, "POST", f"/sessions/{s1}/events", cand1, {"events": [{
        "eventId": "00000000-0000-4000-8000-000000000001", "source": "LAPTOP",
        "eventType": "TAB_SWITCH", "severity": 3, "timestamp": now.isoformat(),
    }]})
    frame = call(base, "POST", f"/sessions/{s1}/artifacts", cand1, raw=PNG,
                 content_type="image/png")["frameRef"]
    minted = call(base, "POST", f"/sessions/{s1}/pairing", cand1)
    pairing_token = parse_qs(urlparse(minted["pairingUrl"]).fragment)["t"][0]
    s2 = call(base, "POST", f"/exams/{published}/sessions", cand2, {"deviceFingerprint": "contract-laptop-2"})["id"]
    call(base, "POST", f"/sessions/{s2}/submit", cand2)

    dictionaries = {
        "exams": [draft, published, archived],
        "questions": q_draft + q_published + q_archived,
        "candidates": [c1, c2, c3],
        "users": [admin_id, c1, c2, c3, proctor],
        # Targets of changes to a user (deactivate, re-role, erase): never the candidates
        # whose tokens the run uses; the admin may not demote or erase itself.
        "patchable_users": [admin_id, c3, proctor],
        "sessions": [s1, s2],
        "frames": [frame],
        "pairing_tokens": [pairing_token],
    }
    path_dicts = {
        "/api/v1/exams/{id}": {"id": "exams"},
        "/api/v1/sessions/{id}": {"id": "sessions"},
        "/api/v1/users/{id}": {"id": "users"},
        "/api/v1/artifacts/{frame_ref}": {"frame_ref": "frames"},
    }
    extra = {"qid": "questions", "question_id": "questions", "candidate_id": "candidates"}
    candidate_ops = {
        "GET /api/v1/me/exams", "POST /api/v1/exams/{id}/media-check",
        "POST /api/v1/exams/{id}/sessions", "POST /api/v1/sessions/{id}/pairing",
        "POST /api/v1/sessions/{id}/submit", "PUT /api/v1/sessions/{id}/answers/{question_id}",
        "POST /api/v1/sessions/{id}/events", "POST /api/v1/sessions/{id}/artifacts",
    }

    spec = json.loads(urllib.request.urlopen(base + API + "/openapi.json", timeout=30).read())
    lines = [
        "# Written by scripts/contract/seed.py for one run of scripts/contract.sh.",
        f'headers = {{ Authorization = "Bearer {admin}" }}',
        "",
        "# Every run starts clean: no crash files replayed from an earlier run (or hub).",
        "[cache]",
        "enabled = false",
        "",
    ]
    for name, values in dictionaries.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append(f"values = {json.dumps(values)}")
        lines.append("")
    for path, item in sorted(spec["paths"].items()):
        for method in ("get", "put", "post", "delete", "patch"):
            if method not in item:
                continue
            label = f"{method.upper()} {path}"
            params = {}
            for prefix, names in path_dicts.items():
                if path.startswith(prefix):
                    params.update(names)
            for name, dictionary in extra.items():
                if "{" + name + "}" in path:
                    params[name] = dictionary
            if path.startswith("/api/v1/users/{id}") and method != "get":
                # PATCH, erase, …: never candidate1/2, whose tokens and sessions the run uses.
                params["id"] = "patchable_users"
            if label == "POST /api/v1/pairing/claim":
                params["body.token"] = "pairing_tokens"
            if label not in candidate_ops and not params:
                continue
            lines.append("[[operations]]")
            lines.append(f"include-name = {json.dumps(label)}")
            if label in candidate_ops:
                lines.append(f'headers = {{ Authorization = "Bearer {cand1}" }}')
            if params:
                bindings = ", ".join(
                    f'"{"" if k.startswith("body.") else "path."}{k}" = {{ dictionary = "{d}", probability = 0.8 }}'
                    for k, d in params.items()
                )
                lines.append(f"parameters = {{ {bindings} }}")
            lines.append("")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"seeded: exams draft={draft} published={published} archived={archived}; "
          f"sessions started={s1} submitted={s2}; candidates {c1} {c2} {c3}")


if __name__ == "__main__":
    main()
