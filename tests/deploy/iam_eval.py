"""What a real job asked of AWS, as IAM sees it, and a small strict evaluator of Allow statements.

The calls come from the moto server's request recorder (``/moto-api/recorder/``): every HTTP request the job made,
boto3's and pyarrow's (the Iceberg data files) alike. Each request is turned into the IAM action(s) it needs, with
the resource ARN and, for ``s3:ListBucket``, the ``s3:prefix`` it lists.

The evaluator knows only what the task role's policy uses: ``Effect: Allow``; ``Action`` and ``Resource`` as a
string or a list, with ``*`` and ``?`` wildcards; ``Condition`` with ``StringLike`` / ``StringEquals`` on
``s3:prefix`` (a call without the key does not match, as in IAM without ``IfExists``). Anything else in a
statement (Deny, NotAction, NotResource, another operator or key) is an error, so a policy that outgrows it is
noticed instead of being judged wrongly.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from html import unescape
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    prefix: str | None = None  # s3:prefix of a ListBucket; None: the request has no prefix


def _body(entry: Mapping[str, Any]) -> bytes:
    body = entry.get("body") or ""
    return base64.b64decode(body) if entry.get("body_encoded") else str(body).encode()


def _service(headers: Mapping[str, str]) -> str:
    auth = headers.get("Authorization", "")
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
    if not match:
        raise ValueError(f"an unsigned request cannot be attributed to a service: {headers}")
    return match[1]


def _s3(method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str], body: bytes) -> list[Call]:
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "HEAD":
            return [Call("s3:ListBucket", bucket_arn)]  # HeadBucket is authorised as ListBucket
        if method == "GET" and "location" in query:
            return [Call("s3:GetBucketLocation", bucket_arn)]
        if method == "GET" and "uploads" in query:
            return [Call("s3:ListBucketMultipartUploads", bucket_arn)]
        if method == "GET" and not set(query) - {
            "list-type",
            "prefix",
            "delimiter",
            "max-keys",
            "continuation-token",
            "start-after",
            "encoding-type",
            "marker",
            "fetch-owner",
        }:
            return [Call("s3:ListBucket", bucket_arn, query.get("prefix", [None])[0] or None)]
        if method == "POST" and "delete" in query:
            keys = [unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", body.decode())]
            return [Call("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]
        raise ValueError(f"unknown bucket request {method} {path}?{query}")
    arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [Call("s3:ListMultipartUploadParts", arn)]
        if {"tagging", "acl", "attributes"} & set(query):
            raise ValueError(f"unmapped object read {method} {path}?{query}")
        return [Call("s3:GetObject", arn)]
    if method == "PUT":
        if {"tagging", "acl", "retention", "legal-hold"} & set(query):
            raise ValueError(f"unmapped object write {method} {path}?{query}")
        calls = [Call("s3:PutObject", arn)]
        source = headers.get("X-Amz-Copy-Source")
        if source:
            calls.append(Call("s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/').split('?')[0]}"))
        return calls
    if method == "POST" and ({"uploads", "uploadId"} & set(query)):
        return [Call("s3:PutObject", arn)]
    if method == "DELETE":
        return [Call("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", arn)]
    raise ValueError(f"unknown object request {method} {path}?{query}")


def _glue(operation: str, args: Mapping[str, Any], region: str, account: str) -> list[Call]:
    base = f"arn:aws:glue:{region}:{account}"
    database = args.get("DatabaseName") or args.get("Name") or (args.get("DatabaseInput") or {}).get("Name")
    table = (
        (args.get("TableInput") or {}).get("Name")
        or (args.get("Name") if "DatabaseName" in args else None)
        or args.get("TableName")
    )
    if operation == "GetDatabases":  # every database's name: the catalog and all its databases
        return [Call(f"glue:{operation}", f"{base}:catalog"), Call(f"glue:{operation}", f"{base}:database/*")]
    resources = [f"{base}:catalog", f"{base}:database/{database}"]
    if operation in ("GetTables", "SearchTables"):
        resources.append(f"{base}:table/{database}/*")
    elif table:
        resources.append(f"{base}:table/{database}/{table}")
    return [Call(f"glue:{operation}", resource) for resource in resources]


#: Athena calls that name a query by its id only: authorised on the work group the query ran in.
_ATHENA_BY_QUERY = {"GetQueryExecution", "GetQueryResults", "StopQueryExecution", "BatchGetQueryExecution"}
_ATHENA_CATALOG = {"GetDataCatalog", "GetDatabase", "ListDatabases", "GetTableMetadata", "ListTableMetadata"}


def _athena(operation: str, args: Mapping[str, Any], region: str, account: str, work_groups: set[str]) -> Call:
    base = f"arn:aws:athena:{region}:{account}"
    if operation in _ATHENA_CATALOG:
        return Call(f"athena:{operation}", f"{base}:datacatalog/{args.get('CatalogName') or args.get('Name')}")
    if operation in _ATHENA_BY_QUERY:
        if len(work_groups) != 1:  # the recorder keeps requests only: the query's work group is the run's one
            raise ValueError(f"athena:{operation} by query id, with queries started in {sorted(work_groups)}")
        return Call(f"athena:{operation}", f"{base}:workgroup/{next(iter(work_groups))}")
    if operation in ("StartQueryExecution", "GetWorkGroup"):
        group = args.get("WorkGroup") or "primary"
        work_groups.add(group)
        return Call(f"athena:{operation}", f"{base}:workgroup/{group}")
    raise ValueError(f"an Athena call this evaluator does not map: {operation}")


def calls_of(recording: str, *, region: str, account: str, key_arns: Mapping[str, str]) -> list[Call]:
    """Every IAM action the recorded requests need; ``key_arns`` maps a KMS key id or alias to its ARN."""
    calls: list[Call] = []
    work_groups: set[str] = set()
    for line in recording.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        headers, body = entry["headers"], _body(entry)
        url = urlsplit(entry["url"])
        service = _service(headers)
        if service == "s3":
            calls += _s3(entry["method"], url.path, parse_qs(url.query, keep_blank_values=True), headers, body)
        elif service in ("glue", "kms"):
            operation = headers["X-Amz-Target"].split(".", 1)[1]
            args = json.loads(body or b"{}")
            if service == "glue":
                calls += _glue(operation, args, region, account)
            else:
                calls.append(Call(f"kms:{operation}", key_arns[args["KeyId"]]))
        elif service == "athena":
            operation = headers["X-Amz-Target"].split(".", 1)[1]
            calls.append(_athena(operation, json.loads(body or b"{}"), region, account, work_groups))
        elif service == "sts":
            action = parse_qs(body.decode())["Action"][0]
            calls.append(Call(f"sts:{action}", "*"))
        else:
            raise ValueError(f"a request to {service}, which this evaluator does not map: {entry['url']}")
    return calls


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: Mapping[str, Any], call: Call) -> bool:
    for operator, keys in condition.items():
        if operator not in ("StringLike", "StringEquals"):
            raise ValueError(f"condition operator {operator} is not evaluated here")
        for key, values in keys.items():
            if key != "s3:prefix":
                raise ValueError(f"condition key {key} is not evaluated here")
            if call.prefix is None:
                return False
            match = fnmatchcase if operator == "StringLike" else str.__eq__
            if not any(match(call.prefix, v) for v in _listed(values)):
                return False
    return True


def grants(statement: Mapping[str, Any], call: Call) -> list[tuple[str, str]]:
    """The (action pattern, resource pattern) pairs of ``statement`` that allow ``call`` (empty: none)."""
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if statement.get("Effect") != "Allow" or unknown:
        raise ValueError(f"only Allow statements with Action, Resource, Condition are evaluated: {statement}")
    if not _condition_holds(statement.get("Condition", {}), call):
        return []
    return [
        (action, resource)
        for action in _listed(statement["Action"])
        if fnmatchcase(call.action.lower(), action.lower())
        for resource in _listed(statement["Resource"])
        if fnmatchcase(call.resource, resource)
    ]


@dataclass(frozen=True)
class Verdict:
    denied: list[Call]
    #: (Sid, action pattern, resource pattern) that no call used.
    unused: list[tuple[str, str, str]]


def evaluate(statements: Iterable[Mapping[str, Any]], calls: Iterable[Call]) -> Verdict:
    statements = list(statements)
    used: set[tuple[str, str, str]] = set()
    denied: list[Call] = []
    for call in dict.fromkeys(calls):
        allowed = False
        for statement in statements:
            for action, resource in grants(statement, call):
                used.add((statement.get("Sid", ""), action, resource))
                allowed = True
        if not allowed:
            denied.append(call)
    every = [
        (st.get("Sid", ""), action, resource)
        for st in statements
        for action in _listed(st["Action"])
        for resource in _listed(st["Resource"])
    ]
    return Verdict(denied, [grant for grant in every if grant not in used])
