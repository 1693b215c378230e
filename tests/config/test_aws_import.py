"""AWS WAF JSON -> rule file: table tests per statement, field and action; the fixtures in aws/
(shaped as `aws wafv2 get-*` prints them) compiled by the real engine and evaluated."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from wafproxy.acl.compile import load_rule_files, managed_rules_dir
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind
from wafproxy.acl.transforms import TRANSFORMS
from wafproxy.config.aws_import import (
    MANAGED_GROUPS,
    TRANSFORM_TYPES,
    AwsImportError,
    ImportResult,
    SearchStringEncoding,
    convert,
    dump_yaml,
    import_files,
)
from wafproxy.errors import ConfigErrors, WafProxyError
from wafproxy.request import WafRequest

FIXTURES = Path(__file__).parent / "aws"
ACCOUNT = "111122223333"
PREFIX = f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional"
IP_SET_ARN = f"{PREFIX}/ipset/office/9a7e4b2c-1d3f-4e5a-8b6c-7d8e9f0a1b02"
REGEX_SET_ARN = f"{PREFIX}/regexpatternset/bad-agents/5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e03"
GROUP_ARN = f"{PREFIX}/rulegroup/shop-rules/1b2c3d4e-5f60-4718-a9b0-c1d2e3f4a504"
VISIBILITY = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "m"}
NO_TRANSFORM = [{"Priority": 0, "Type": "NONE"}]

IP_SET = {
    "Name": "office",
    "Id": "9a7e",
    "ARN": IP_SET_ARN,
    "IPAddressVersion": "IPV4",
    "Addresses": ["10.0.0.0/8"],
}
REGEX_SET = {
    "Name": "bad-agents",
    "Id": "5c6d",
    "ARN": REGEX_SET_ARN,
    "RegularExpressionList": [{"RegexString": "sqlmap"}],
}
RULE_GROUP = {
    "Name": "shop-rules",
    "Id": "1b2c",
    "ARN": GROUP_ARN,
    "Capacity": 10,
    "VisibilityConfig": VISIBILITY,
    "Rules": [
        {
            "Name": "r1",
            "Priority": 0,
            "Action": {"Block": {}},
            "VisibilityConfig": VISIBILITY,
            "Statement": {
                "SizeConstraintStatement": {
                    "FieldToMatch": {"QueryString": {}},
                    "ComparisonOperator": "GT",
                    "Size": 3,
                    "TextTransformations": NO_TRANSFORM,
                }
            },
        }
    ],
}
SETS = [("ip.json", IP_SET), ("regex.json", REGEX_SET), ("group.json", RULE_GROUP)]


def web_acl(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A bare web ACL object (as the console's JSON editor shows it)."""
    return {
        "Name": "t",
        "Id": "0e1f",
        "DefaultAction": {"Allow": {}},
        "Rules": list(rules),
        "VisibilityConfig": VISIBILITY,
        **extra,
    }


def rule(statement: dict[str, Any], **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"Action": {"Block": {}}, **extra}
    return {
        "Name": "r",
        "Priority": 0,
        "Statement": statement,
        "VisibilityConfig": VISIBILITY,
        **fields,
    }


def converted_rule(statement: dict[str, Any], **extra: Any) -> Any:
    result = convert([("acl.json", web_acl(rule(statement, **extra))), *SETS])
    return result.data["rules"][0]  # type: ignore[index]


def import_error(documents: list[tuple[str, object]]) -> str:
    with pytest.raises(AwsImportError) as info:
        convert(documents)
    assert isinstance(info.value, WafProxyError)
    return str(info.value)


def field_stmt(field: dict[str, Any], transforms: list[dict[str, Any]] = NO_TRANSFORM) -> Any:
    return {"XssMatchStatement": {"FieldToMatch": field, "TextTransformations": transforms}}


# -- statements -----------------------------------------------------------------------------------
STATEMENTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "rate-based",
        {
            "RateBasedStatement": {
                "Limit": 100,
                "AggregateKeyType": "IP",
                "EvaluationWindowSec": 60,
                "ScopeDownStatement": {
                    "ByteMatchStatement": {
                        "FieldToMatch": {"UriPath": {}},
                        "PositionalConstraint": "STARTS_WITH",
                        "SearchString": "/login",
                        "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                    }
                },
            }
        },
        {
            "rate_based": {
                "limit": 100,
                "aggregate_key_type": "ip",
                "evaluation_window_sec": 60,
                "scope_down_statement": {
                    "byte_match": {
                        "field": "uri_path",
                        "constraint": "starts_with",
                        "value": "/login",
                    }
                },
            }
        },
    ),
    (
        "byte_match",
        {
            "ByteMatchStatement": {
                "SearchString": "/admin",
                "FieldToMatch": {"UriPath": {}},
                "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
                "PositionalConstraint": "STARTS_WITH",
            }
        },
        {
            "byte_match": {
                "field": "uri_path",
                "constraint": "starts_with",
                "value": "/admin",
                "transforms": ["lowercase"],
            }
        },
    ),
    (
        "regex_match",
        {
            "RegexMatchStatement": {
                "RegexString": "^/a[0-9]+$",
                "FieldToMatch": {"UriPath": {}},
                "TextTransformations": NO_TRANSFORM,
            }
        },
        {"regex_match": {"field": "uri_path", "regex": "^/a[0-9]+$"}},
    ),
    (
        "regex_pattern_set",
        {
            "RegexPatternSetReferenceStatement": {
                "ARN": REGEX_SET_ARN,
                "FieldToMatch": {"SingleHeader": {"Name": "User-Agent"}},
                "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
            }
        },
        {
            "regex_pattern_set": {
                "ref": "bad-agents",
                "field": {"single_header": {"name": "User-Agent"}},
                "transforms": ["lowercase"],
            }
        },
    ),
    (
        "size_constraint",
        {
            "SizeConstraintStatement": {
                "FieldToMatch": {"QueryString": {}},
                "ComparisonOperator": "GT",
                "Size": 2048,
                "TextTransformations": NO_TRANSFORM,
            }
        },
        {"size_constraint": {"field": "query_string", "comparison_operator": "gt", "size": 2048}},
    ),
    (
        "sqli_match",
        {
            "SqliMatchStatement": {
                "FieldToMatch": {"AllQueryArguments": {}},
                "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}],
                "SensitivityLevel": "HIGH",
            }
        },
        {
            "sqli_match": {
                "field": "all_query_arguments",
                "sensitivity_level": "high",
                "transforms": ["url_decode"],
            }
        },
    ),
    (
        "sqli_match default level",
        {"SqliMatchStatement": {"FieldToMatch": {"Body": {}}, "TextTransformations": NO_TRANSFORM}},
        {"sqli_match": {"field": "body"}},
    ),
    (
        "xss_match",
        {
            "XssMatchStatement": {
                "FieldToMatch": {"Body": {"OversizeHandling": "CONTINUE"}},
                "TextTransformations": [{"Priority": 0, "Type": "HTML_ENTITY_DECODE"}],
            }
        },
        {
            "xss_match": {
                "field": {"body": {"oversize_handling": "continue"}},
                "transforms": ["html_entity_decode"],
            }
        },
    ),
    (
        "geo_match",
        {
            "GeoMatchStatement": {
                "CountryCodes": ["NL", "BE"],
                "ForwardedIPConfig": {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "MATCH"},
            }
        },
        {
            "geo_match": {
                "country_codes": ["NL", "BE"],
                "forwarded_ip_config": {
                    "header_name": "X-Forwarded-For",
                    "fallback_behavior": "match",
                },
            }
        },
    ),
    (
        "asn_match",
        {"AsnMatchStatement": {"AsnList": [64496, 64511]}},
        {"asn_match": {"asn_list": [64496, 64511]}},
    ),
    ("ip_set", {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}, {"ip_set": {"ref": "office"}}),
    (
        "ip_set forwarded",
        {
            "IPSetReferenceStatement": {
                "ARN": IP_SET_ARN,
                "IPSetForwardedIPConfig": {
                    "HeaderName": "X-Forwarded-For",
                    "FallbackBehavior": "NO_MATCH",
                    "Position": "LAST",
                },
            }
        },
        {
            "ip_set": {
                "ref": "office",
                "forwarded_ip_config": {
                    "header_name": "X-Forwarded-For",
                    "fallback_behavior": "no_match",
                    "position": "last",
                },
            }
        },
    ),
    (
        "label_match",
        {"LabelMatchStatement": {"Scope": "LABEL", "Key": "client:scanner"}},
        {"label_match": {"scope": "label", "key": "client:scanner"}},
    ),
    (
        "label_match group namespace",
        {
            "LabelMatchStatement": {
                "Scope": "NAMESPACE",
                "Key": f"awswaf:{ACCOUNT}:rulegroup:shop-rules:attack:",
            }
        },
        {"label_match": {"scope": "namespace", "key": "rulegroup:shop-rules:attack:"}},
    ),
    (
        "and / or / not",
        {
            "AndStatement": {
                "Statements": [
                    {
                        "OrStatement": {
                            "Statements": [
                                {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}},
                                {"LabelMatchStatement": {"Scope": "LABEL", "Key": "a:b"}},
                            ]
                        }
                    },
                    {
                        "NotStatement": {
                            "Statement": {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}
                        }
                    },
                ]
            }
        },
        {
            "and": [
                {
                    "or": [
                        {"ip_set": {"ref": "office"}},
                        {"label_match": {"scope": "label", "key": "a:b"}},
                    ]
                },
                {"not": {"ip_set": {"ref": "office"}}},
            ]
        },
    ),
    (
        "rule_group",
        {
            "RuleGroupReferenceStatement": {
                "ARN": GROUP_ARN,
                "ExcludedRules": [{"Name": "r1"}],
                "RuleActionOverrides": [
                    {
                        "Name": "r2",
                        "ActionToUse": {"Block": {"CustomResponse": {"ResponseCode": 429}}},
                    }
                ],
            }
        },
        {
            "rule_group": {
                "ref": "shop-rules",
                "rule_action_overrides": {
                    "r1": "count",
                    "r2": {"block": {"custom_response": {"response_code": 429}}},
                },
            }
        },
    ),
    (
        "managed_rule_group",
        {
            "ManagedRuleGroupStatement": {
                "VendorName": "AWS",
                "Name": "AWSManagedRulesSQLiRuleSet",
                "ScopeDownStatement": {
                    "NotStatement": {"Statement": {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}}
                },
            }
        },
        {
            "managed_rule_group": {
                "name": "wafproxy-sqli",
                "scope_down_statement": {"not": {"ip_set": {"ref": "office"}}},
            }
        },
    ),
]


@pytest.mark.parametrize(
    ("aws", "ours"), [c[1:] for c in STATEMENTS], ids=[c[0] for c in STATEMENTS]
)
def test_statement(aws: dict[str, Any], ours: dict[str, Any]) -> None:
    assert converted_rule(aws)["statement"] == ours


STATEMENT_ERRORS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "RateBasedStatement": {
                "Limit": 100,
                "AggregateKeyType": "CUSTOM_KEYS",
                "CustomKeys": [{"HTTPMethod": {}}],
            }
        },
        "acl.json: Rules[0].Statement.RateBasedStatement.CustomKeys: importing custom_keys is "
        "not supported yet",
    ),
    (
        {
            "ManagedRuleGroupStatement": {
                "VendorName": "AWS",
                "Name": "AWSManagedRulesBotControlRuleSet",
            }
        },
        "Rules[0].Statement.ManagedRuleGroupStatement.Name: managed rule group "
        "AWS/AWSManagedRulesBotControlRuleSet has no wafproxy counterpart",
    ),
    (
        {"ManagedRuleGroupStatement": {"VendorName": "F5", "Name": "AWSManagedRulesCommonRuleSet"}},
        "managed rule group F5/AWSManagedRulesCommonRuleSet has no wafproxy counterpart",
    ),
    (
        {
            "ManagedRuleGroupStatement": {
                "VendorName": "AWS",
                "Name": "AWSManagedRulesCommonRuleSet",
                "ManagedRuleGroupConfigs": [{"LoginPath": "/login"}],
            }
        },
        "ManagedRuleGroupStatement.ManagedRuleGroupConfigs: "
        "ManagedRuleGroupConfigs is not supported",
    ),
    (
        {
            "XssMatchStatement": {
                "FieldToMatch": {"UriPath": {}},
                "TextTransformations": NO_TRANSFORM,
                "Sensitivity": "HIGH",
            }
        },
        "Rules[0].Statement.XssMatchStatement.Sensitivity: unknown key 'Sensitivity'",
    ),
    (
        {"FancyStatement": {}},
        "Rules[0].Statement.FancyStatement: unknown statement 'FancyStatement'",
    ),
    (
        {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}, "NotStatement": {}},
        "Rules[0].Statement: expected exactly one statement",
    ),
    (
        {
            "RuleGroupReferenceStatement": {
                "ARN": GROUP_ARN,
                "ExcludedRules": [{"Name": "r1"}],
                "RuleActionOverrides": [{"Name": "r1", "ActionToUse": {"Block": {}}}],
            }
        },
        "RuleActionOverrides[0]: rule 'r1' is both excluded and overridden to block",
    ),
    (
        {
            "SizeConstraintStatement": {
                "FieldToMatch": {"UriPath": {}},
                "ComparisonOperator": "GT",
                "Size": "10",
                "TextTransformations": NO_TRANSFORM,
            }
        },
        'SizeConstraintStatement.Size: expected an integer; got "10"',
    ),
]


@pytest.mark.parametrize(("aws", "message"), STATEMENT_ERRORS)
def test_statement_error(aws: dict[str, Any], message: str) -> None:
    assert message in import_error([("acl.json", web_acl(rule(aws))), *SETS])


def test_every_aws_statement_has_a_row() -> None:
    aws_statements = {
        "ByteMatchStatement",
        "SqliMatchStatement",
        "XssMatchStatement",
        "SizeConstraintStatement",
        "GeoMatchStatement",
        "RuleGroupReferenceStatement",
        "IPSetReferenceStatement",
        "RegexPatternSetReferenceStatement",
        "RateBasedStatement",
        "AndStatement",
        "OrStatement",
        "NotStatement",
        "ManagedRuleGroupStatement",
        "LabelMatchStatement",
        "RegexMatchStatement",
        "AsnMatchStatement",
    }
    rows = [*(c[1] for c in STATEMENTS), *(c[0] for c in STATEMENT_ERRORS)]
    covered = {key for row in rows for key in json.dumps(row).split('"') if key in aws_statements}
    assert covered == aws_statements


# -- fields and transformations -------------------------------------------------------------------
FIELDS: list[tuple[dict[str, Any], object]] = [
    ({"UriPath": {}}, "uri_path"),
    ({"QueryString": {}}, "query_string"),
    ({"Method": {}}, "method"),
    ({"AllQueryArguments": {}}, "all_query_arguments"),
    ({"SingleHeader": {"Name": "x-api-key"}}, {"single_header": {"name": "x-api-key"}}),
    ({"SingleQueryArgument": {"Name": "id"}}, {"single_query_argument": {"name": "id"}}),
    ({"Body": {}}, "body"),
    ({"Body": {"OversizeHandling": "NO_MATCH"}}, {"body": {"oversize_handling": "no_match"}}),
    (
        {"JsonBody": {"MatchPattern": {"All": {}}, "MatchScope": "ALL"}},
        {"json_body": {"match_pattern": {"all": {}}, "match_scope": "all"}},
    ),
    (
        {
            "JsonBody": {
                "MatchPattern": {"IncludedPaths": ["/a", "/b/0"]},
                "MatchScope": "KEY",
                "InvalidFallbackBehavior": "NO_MATCH",
                "OversizeHandling": "MATCH",
            }
        },
        {
            "json_body": {
                "match_pattern": {"included_paths": ["/a", "/b/0"]},
                "match_scope": "key",
                "invalid_fallback_behavior": "no_match",
                "oversize_handling": "match",
            }
        },
    ),
    (
        {
            "Headers": {
                "MatchPattern": {"All": {}},
                "MatchScope": "VALUE",
                "OversizeHandling": "CONTINUE",
            }
        },
        {
            "headers": {
                "match_pattern": {"all": {}},
                "match_scope": "value",
                "oversize_handling": "continue",
            }
        },
    ),
    (
        {
            "Headers": {
                "MatchPattern": {"IncludedHeaders": ["Referer"]},
                "MatchScope": "KEY",
                "OversizeHandling": "MATCH",
            }
        },
        {
            "headers": {
                "match_pattern": {"included_headers": ["Referer"]},
                "match_scope": "key",
                "oversize_handling": "match",
            }
        },
    ),
    (
        {
            "Headers": {
                "MatchPattern": {"ExcludedHeaders": ["Cookie"]},
                "MatchScope": "ALL",
                "OversizeHandling": "NO_MATCH",
            }
        },
        {
            "headers": {
                "match_pattern": {"excluded_headers": ["Cookie"]},
                "match_scope": "all",
                "oversize_handling": "no_match",
            }
        },
    ),
    (
        {
            "Cookies": {
                "MatchPattern": {"IncludedCookies": ["session"]},
                "MatchScope": "VALUE",
                "OversizeHandling": "CONTINUE",
            }
        },
        {
            "cookies": {
                "match_pattern": {"included_cookies": ["session"]},
                "match_scope": "value",
                "oversize_handling": "continue",
            }
        },
    ),
    (
        {
            "Cookies": {
                "MatchPattern": {"ExcludedCookies": ["ga"]},
                "MatchScope": "KEY",
                "OversizeHandling": "MATCH",
            }
        },
        {
            "cookies": {
                "match_pattern": {"excluded_cookies": ["ga"]},
                "match_scope": "key",
                "oversize_handling": "match",
            }
        },
    ),
    (
        {"HeaderOrder": {"OversizeHandling": "MATCH"}},
        {"header_order": {"oversize_handling": "match"}},
    ),
]


@pytest.mark.parametrize(("aws", "ours"), FIELDS, ids=[json.dumps(f[0]) for f in FIELDS])
def test_field(aws: dict[str, Any], ours: object) -> None:
    assert converted_rule(field_stmt(aws))["statement"]["xss_match"]["field"] == ours


def test_every_aws_field_has_a_row() -> None:
    aws_fields = {
        "SingleHeader",
        "SingleQueryArgument",
        "AllQueryArguments",
        "UriPath",
        "QueryString",
        "Body",
        "Method",
        "JsonBody",
        "Headers",
        "Cookies",
        "HeaderOrder",
    }
    assert {next(iter(f[0])) for f in FIELDS} == aws_fields


@pytest.mark.parametrize(
    ("aws", "message"),
    [
        (
            {"JA3Fingerprint": {"FallbackBehavior": "MATCH"}},
            "the field JA3Fingerprint is not supported",
        ),
        (
            {"JA4Fingerprint": {"FallbackBehavior": "MATCH"}},
            "the field JA4Fingerprint is not supported",
        ),
        ({"UriFragment": {}}, "the field UriFragment is not supported"),
        (
            {
                "Headers": {
                    "MatchPattern": {"IncludedCookies": ["a"]},
                    "MatchScope": "ALL",
                    "OversizeHandling": "MATCH",
                }
            },
            "FieldToMatch.Headers.MatchPattern.IncludedCookies: unknown match pattern",
        ),
        (
            {"Body": {"OversizeHandling": "TRUNCATE"}},
            "FieldToMatch.Body.OversizeHandling: "
            "expected one of CONTINUE, MATCH, NO_MATCH; got 'TRUNCATE'",
        ),
        (
            {"UriPath": {"Name": "x"}},
            "FieldToMatch.UriPath.Name: unknown key 'Name': expected no keys",
        ),
    ],
)
def test_field_error(aws: dict[str, Any], message: str) -> None:
    assert message in import_error([("acl.json", web_acl(rule(field_stmt(aws))))])


@pytest.mark.parametrize(
    ("aws", "ours"),
    [
        (
            [
                {"Priority": 2, "Type": "LOWERCASE"},
                {"Priority": 0, "Type": "URL_DECODE"},
                {"Priority": 1, "Type": "HTML_ENTITY_DECODE"},
            ],
            ["url_decode", "html_entity_decode", "lowercase"],
        ),
        ([{"Priority": 0, "Type": "NONE"}, {"Priority": 5, "Type": "CMD_LINE"}], ["cmd_line"]),
        ([{"Priority": 0, "Type": "NONE"}], None),
    ],
)
def test_transforms_sorted_by_priority_without_none(aws: list[Any], ours: list[str] | None) -> None:
    statement = converted_rule(field_stmt({"UriPath": {}}, aws))["statement"]["xss_match"]
    assert statement.get("transforms") == ours


def test_transform_errors() -> None:
    twice = [{"Priority": 0, "Type": "LOWERCASE"}, {"Priority": 0, "Type": "URL_DECODE"}]
    text = import_error([("a.json", web_acl(rule(field_stmt({"UriPath": {}}, twice))))])
    assert "TextTransformations[1].Priority: two text transformations at priority 0" in text
    unknown = [{"Priority": 0, "Type": "ROT13"}]
    text = import_error([("a.json", web_acl(rule(field_stmt({"UriPath": {}}, unknown))))])
    assert "TextTransformations[0].Type: expected one of NONE," in text


def test_every_aws_transformation_is_a_wafproxy_transform() -> None:
    assert [t for t in TRANSFORM_TYPES if t.lower() not in TRANSFORMS] == []


# -- actions --------------------------------------------------------------------------------------
ACTIONS: list[tuple[dict[str, Any], object]] = [
    ({"Block": {}}, "block"),
    ({"Allow": {}}, "allow"),
    ({"Count": {}}, "count"),
    (
        {
            "Block": {
                "CustomResponse": {
                    "ResponseCode": 429,
                    "CustomResponseBodyKey": "slow",
                    "ResponseHeaders": [{"Name": "retry-after", "Value": "60"}],
                }
            }
        },
        {
            "block": {
                "custom_response": {
                    "response_code": 429,
                    "custom_response_body_key": "slow",
                    "response_headers": [{"name": "retry-after", "value": "60"}],
                }
            }
        },
    ),
    (
        {
            "Allow": {
                "CustomRequestHandling": {"InsertHeaders": [{"Name": "checked", "Value": "1"}]}
            }
        },
        {
            "allow": {
                "custom_request_handling": {"insert_headers": [{"name": "checked", "value": "1"}]}
            }
        },
    ),
    (
        {"Count": {"CustomRequestHandling": {"InsertHeaders": [{"Name": "sus", "Value": "1"}]}}},
        {"count": {"custom_request_handling": {"insert_headers": [{"name": "sus", "value": "1"}]}}},
    ),
]


@pytest.mark.parametrize(("aws", "ours"), ACTIONS, ids=[json.dumps(a[0]) for a in ACTIONS])
def test_action(aws: dict[str, Any], ours: object) -> None:
    assert (
        converted_rule({"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}, Action=aws)[
            "action"
        ]
        == ours
    )


@pytest.mark.parametrize("kind", ["Captcha", "Challenge"])
def test_captcha_and_challenge_actions_are_refused(kind: str) -> None:
    acl = web_acl(rule({"LabelMatchStatement": {"Scope": "LABEL", "Key": "a"}}, Action={kind: {}}))
    text = import_error([("a.json", acl)])
    assert f"a.json: Rules[0].Action.{kind}: {kind} actions are not supported" in text


def test_override_action_and_labels() -> None:
    converted = converted_rule(
        {"RuleGroupReferenceStatement": {"ARN": GROUP_ARN}},
        Action=None,
        OverrideAction={"Count": {}},
        RuleLabels=[{"Name": "grp:seen"}, {"Name": "other"}],
    )
    assert converted["override_action"] == "count"
    assert converted["rule_labels"] == ["grp:seen", "other"]
    assert "action" not in converted


def test_default_action_and_response_bodies() -> None:
    acl = web_acl(
        DefaultAction={
            "Block": {"CustomResponse": {"ResponseCode": 403, "CustomResponseBodyKey": "denied"}}
        },
        CustomResponseBodies={"denied": {"ContentType": "APPLICATION_JSON", "Content": "{}"}},
    )
    data = convert([("a.json", acl)]).data
    assert data["default_action"] == {
        "block": {"custom_response": {"response_code": 403, "custom_response_body_key": "denied"}}
    }
    assert data["custom_response_bodies"] == {
        "denied": {"content_type": "application/json", "content": "{}"}
    }
    text = import_error([("a.json", web_acl(DefaultAction={"Count": {}}))])
    assert "a.json: DefaultAction: expected one of Allow, Block; got 'Count'" in text


# -- search strings -------------------------------------------------------------------------------
def byte_match(**search: str) -> dict[str, Any]:
    return {
        "ByteMatchStatement": {
            **search,
            "FieldToMatch": {"UriPath": {}},
            "TextTransformations": NO_TRANSFORM,
            "PositionalConstraint": "CONTAINS",
        }
    }


def search_value(acl: dict[str, Any], encoding: SearchStringEncoding) -> str:
    result = convert([("a.json", acl)], search_string=encoding)
    rules: Any = result.data["rules"]
    return str(rules[0]["statement"]["byte_match"]["value"])


@pytest.mark.parametrize(
    ("wrapped", "encoding", "search", "value"),
    [
        (True, SearchStringEncoding.AUTO, "L2FkbWlu", "/admin"),
        (False, SearchStringEncoding.AUTO, "/admin", "/admin"),
        (True, SearchStringEncoding.TEXT, "/admin", "/admin"),
        (False, SearchStringEncoding.BASE64, "L2FkbWlu", "/admin"),
    ],
)
def test_search_string_encoding(
    wrapped: bool, encoding: SearchStringEncoding, search: str, value: str
) -> None:
    acl = web_acl(rule(byte_match(SearchString=search)))
    document = {"WebACL": acl, "LockToken": "x"} if wrapped else acl
    assert search_value(document, encoding) == value


def test_search_string_base64_key() -> None:
    acl = web_acl(rule(byte_match(SearchStringBase64="L2xvZ2lu")))
    assert search_value(acl, SearchStringEncoding.AUTO) == "/login"
    both = web_acl(rule(byte_match(SearchString="/login", SearchStringBase64="L2xvZ2lu")))
    assert search_value(both, SearchStringEncoding.AUTO) == "/login"
    text = import_error(
        [("a.json", web_acl(rule(byte_match(SearchString="/x", SearchStringBase64="L2xvZ2lu"))))]
    )
    assert "SearchString and SearchStringBase64 disagree" in text


def test_plain_search_string_in_get_output_is_an_error_with_a_hint() -> None:
    document = {"WebACL": web_acl(rule(byte_match(SearchString="/admin?x=1"))), "LockToken": "x"}
    text = import_error([("a.json", document)])
    assert "WebACL.Rules[0].Statement.ByteMatchStatement.SearchString: '/admin?x=1' is not " in text
    assert "import with the search string encoding 'text'" in text


def test_base64_looking_text_search_string_warns() -> None:
    result = convert([("a.json", web_acl(rule(byte_match(SearchString="L2FkbWlu"))))])
    assert any(
        "'L2FkbWlu' looks base64-encoded (it decodes to '/admin')" in w for w in result.warnings
    )


# -- documents, references, labels ----------------------------------------------------------------
def test_missing_reference_names_the_arn_and_path() -> None:
    acl = web_acl(rule({"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}))
    text = import_error([("acl.json", acl)])
    assert text == (
        f"acl.json: Rules[0].Statement.IPSetReferenceStatement.ARN: no IP set document for "
        f"{IP_SET_ARN}; pass the output of `aws wafv2 get-ip-set` for it as well"
    )


def test_reference_falls_back_to_the_name_in_the_arn() -> None:
    other_arn = IP_SET_ARN.replace("9a7e4b2c", "00000000")
    acl = web_acl(rule({"IPSetReferenceStatement": {"ARN": other_arn}}))
    bare = {k: v for k, v in IP_SET.items() if k not in ("ARN", "Id")}
    data = convert([("acl.json", acl), ("ip.json", bare)]).data
    assert data["rules"][0]["statement"] == {"ip_set": {"ref": "office"}}  # type: ignore[index]


def test_reference_of_the_wrong_kind_is_an_error() -> None:
    acl = web_acl(rule({"IPSetReferenceStatement": {"ARN": REGEX_SET_ARN}}))
    assert "no IP set document for" in import_error([("acl.json", acl), *SETS])


def test_unknown_keys_are_errors_with_their_path() -> None:
    acl = web_acl(rule({"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}), Shiny=True)
    assert "acl.json: Shiny: unknown key 'Shiny'" in import_error([("acl.json", acl), *SETS])
    wrapped = {"WebACL": web_acl(), "LockToken": "x", "Extra": 1}
    assert "acl.json: Extra: unknown key 'Extra' beside WebACL" in import_error(
        [("acl.json", wrapped)]
    )
    rules: Any = RULE_GROUP["Rules"]
    group = {"RuleGroup": {**RULE_GROUP, "Rules": [{**rules[0], "Colour": "red"}]}}
    assert "g.json: RuleGroup.Rules[0].Colour: unknown key" in import_error([("g.json", group)])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {
                "AssociationConfig": {
                    "RequestBody": {"CLOUDFRONT": {"DefaultSizeInspectionLimit": "KB_64"}}
                }
            },
            "AssociationConfig: AssociationConfig is not supported",
        ),
        (
            {"DataProtectionConfig": {"DataProtections": []}},
            "DataProtectionConfig is not supported",
        ),
        (
            {"PreProcessFirewallManagerRuleGroups": [{"Name": "fms"}]},
            "PreProcessFirewallManagerRuleGroups is not supported",
        ),
        (
            {"CaptchaConfig": {"ImmunityTimeProperty": {"ImmunityTime": 60}}},
            "CaptchaConfig: CaptchaConfig with a non-default immunity time is not supported",
        ),
    ],
)
def test_refused_web_acl_settings(extra: dict[str, Any], message: str) -> None:
    assert message in import_error([("a.json", web_acl(**extra))])


def test_dropped_web_acl_settings() -> None:
    acl = web_acl(
        ARN=f"{PREFIX}/webacl/t/0e1f",
        Capacity=3,
        ManagedByFirewallManager=False,
        RetrofittedByFirewallManager=False,
        TokenDomains=["example.com"],
        PreProcessFirewallManagerRuleGroups=[],
        PostProcessFirewallManagerRuleGroups=[],
        CaptchaConfig={"ImmunityTimeProperty": {"ImmunityTime": 300}},
        ChallengeConfig={},
        Description="",
    )
    data = convert([("a.json", {"WebACL": acl, "LockToken": "x"})]).data
    assert data == {
        "web_acl": "t",
        "label_namespace": f"awswaf:{ACCOUNT}:webacl:t",
        "default_action": "allow",
        "rules": [],
    }


def test_two_web_acls_are_an_error() -> None:
    text = import_error([("a.json", web_acl()), ("b.json", {**web_acl(), "Name": "u"})])
    assert text == "b.json: a rule file holds one web ACL; 't' from a.json is the first"


def test_two_sets_with_one_name_are_an_error() -> None:
    text = import_error([("a.json", IP_SET), ("b.json", {**IP_SET, "Addresses": []})])
    assert text == "b.json: Name: a second IP set named 'office'"


def test_documents_that_are_not_wafv2_objects() -> None:
    assert "expected a JSON object" in import_error([("a.json", [1, 2])])
    assert "not a web ACL, rule group" in import_error([("a.json", {"Foo": 1})])
    assert "no documents to import" in import_error([])


def test_group_label_namespace_is_rewritten_and_managed_labels_warn() -> None:
    statement = {
        "OrStatement": {
            "Statements": [
                {
                    "LabelMatchStatement": {
                        "Scope": "LABEL",
                        "Key": f"awswaf:{ACCOUNT}:rulegroup:shop-rules:a:b",
                    }
                },
                {
                    "LabelMatchStatement": {
                        "Scope": "LABEL",
                        "Key": "awswaf:managed:aws:core-rule-set:NoUserAgent_Header",
                    }
                },
            ]
        }
    }
    result = convert([("acl.json", web_acl(rule(statement))), *SETS])
    keys = [s["label_match"]["key"] for s in result.data["rules"][0]["statement"]["or"]]  # type: ignore[index]
    assert keys == [
        "rulegroup:shop-rules:a:b",
        "awswaf:managed:aws:core-rule-set:NoUserAgent_Header",
    ]
    assert any("is a label of an AWS managed rule group" in w for w in result.warnings)


def test_managed_group_tuning_is_dropped_with_a_warning() -> None:
    statement = {
        "ManagedRuleGroupStatement": {
            "VendorName": "AWS",
            "Name": "AWSManagedRulesCommonRuleSet",
            "Version": "Version_1.12",
            "ExcludedRules": [{"Name": "SizeRestrictions_BODY"}],
            "RuleActionOverrides": [{"Name": "NoUserAgent_HEADER", "ActionToUse": {"Count": {}}}],
        }
    }
    result = convert(
        [("acl.json", web_acl(rule(statement, Action=None, OverrideAction={"None": {}})))]
    )
    assert result.data["rules"][0]["statement"] == {"managed_rule_group": {"name": "wafproxy-core"}}  # type: ignore[index]
    assert result.warnings == (
        "acl.json: Rules[0].Statement.ManagedRuleGroupStatement: AWS/AWSManagedRulesCommonRuleSet "
        "is replaced by wafproxy's wafproxy-core: a similar scope, not the same rules; dropped "
        "Version 'Version_1.12'; ExcludedRules for SizeRestrictions_BODY; RuleActionOverrides "
        "for NoUserAgent_HEADER",
    )


@pytest.mark.parametrize(("aws_name", "ours"), sorted(MANAGED_GROUPS.items()))
def test_managed_group_mapping_loads(aws_name: str, ours: str, tmp_path: Path) -> None:
    if not (managed_rules_dir() / f"{ours}.yaml").exists():
        pytest.skip(f"{ours} is not shipped yet")
    statement = {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": aws_name}}
    acl = web_acl(rule(statement, Action=None, OverrideAction={"None": {}}))
    path = tmp_path / "acl.yaml"
    path.write_text(dump_yaml(convert([("acl.json", acl)]).data), encoding="utf-8")
    assert load_rule_files([path]).acls["t"].rules[0].group.name == ours  # type: ignore[union-attr]


def test_rule_group_alone_yields_a_loadable_sets_file(tmp_path: Path) -> None:
    result = convert([("group.json", {"RuleGroup": RULE_GROUP, "LockToken": "x"})])
    assert list(result.data) == ["rule_groups"]
    sets = tmp_path / "group.yaml"
    sets.write_text(dump_yaml(result.data), encoding="utf-8")
    acl = tmp_path / "acl.yaml"
    acl.write_text(
        "web_acl: mine\ndefault_action: allow\nrules:\n  - name: g\n    priority: 1\n"
        "    override_action: none\n    statement: {rule_group: {ref: shop-rules}}\n",
        encoding="utf-8",
    )
    compiled = load_rule_files([sets, acl]).acls["mine"]
    assert evaluate(compiled, WafRequest("GET", "/", "long=1")).terminating_rule == "g"
    assert not evaluate(compiled, WafRequest("GET", "/", "a=1")).blocked


# -- files and YAML -------------------------------------------------------------------------------
def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "acl.json"
    path.write_text('{\n  "WebACL": {\n    "Name": "t",\n  }\n}\n', encoding="utf-8")
    with pytest.raises(AwsImportError) as info:
        import_files([path])
    assert (
        str(info.value)
        == f"{path}:4:3: invalid JSON: Expecting property name enclosed in double quotes"
    )


def test_duplicate_json_keys_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "acl.json"
    path.write_text('{"IPSet": {"Name": "a", "Name": "b", "Addresses": []}}', encoding="utf-8")
    with pytest.raises(AwsImportError, match="duplicate key 'Name'"):
        import_files([path])


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AwsImportError, match="cannot read"):
        import_files([tmp_path / "missing.json"])


def test_dump_yaml_round_trips_with_a_header() -> None:
    data: dict[str, object] = {
        "web_acl": "t",
        "default_action": "allow",
        "custom_response_bodies": {"b": {"content": "one\ntwo\n"}},
        "rules": [{"name": "yes", "priority": 1}],
    }
    text = dump_yaml(data, ["a.json: X: first\nsecond"], ["a.json"])
    assert text.startswith(
        "# Imported from AWS WAF (wafv2) JSON by `wafproxy import-aws` from a.json.\n"
    )
    assert "#   - a.json: X: first second\n" in text
    assert "content: |\n" in text
    assert yaml.safe_load(text) == data
    assert list(yaml.safe_load(text)) == list(data)


# -- the fixtures, end to end ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    text = import_files(sorted(FIXTURES.glob("*.json")))
    path = tmp_path_factory.mktemp("imported") / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    return text, load_rule_files([path])


def test_fixtures_convert_to_the_documented_language() -> None:
    documents = [(p.name, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]
    result = convert(documents)
    assert isinstance(result, ImportResult)
    data: Any = result.data
    assert list(data) == [
        "web_acl",
        "description",
        "label_namespace",
        "default_action",
        "custom_response_bodies",
        "rules",
        "rule_groups",
        "ip_sets",
        "regex_pattern_sets",
    ]
    assert data["label_namespace"] == f"awswaf:{ACCOUNT}:webacl:shop-acl"
    assert [r["name"] for r in data["rules"]][:3] == [
        "block-bad-ips",
        "tag-scanners",
        "block-scanners-on-admin",
    ]
    assert data["rules"][2]["statement"]["and"][1]["byte_match"] == {
        "field": "uri_path",
        "constraint": "starts_with",
        "value": "/admin",
        "transforms": ["url_decode", "lowercase"],
    }
    assert data["rule_groups"]["shop-rules"]["capacity"] == 200
    assert (
        data["custom_response_bodies"]["method-not-allowed"]["content"] == "Method not allowed.\n"
    )
    assert data["ip_sets"]["blocklist"]["addresses"] == ["198.51.100.0/24", "203.0.113.7/32"]
    assert len(result.warnings) == 3


def test_fixtures_load_with_the_engine(imported: tuple[str, Any]) -> None:
    text, rules = imported
    assert text.startswith("# Imported from AWS WAF")
    assert "wafproxy-core: a similar scope" in text
    assert list(rules.acls) == ["shop-acl"]
    assert rules.warnings == ()


BROWSER = (("User-Agent", "Mozilla/5.0"),)
"""What a real client sends: the core group blocks a request without a User-Agent."""

REQUESTS = [
    (
        "blocklisted forwarded address",
        {"headers": (("X-Forwarded-For", "203.0.113.7"),)},
        ActionKind.BLOCK,
        "block-bad-ips",
        403,
    ),
    (
        "admin from outside",
        {"uri_path": "/Admin/users", "client_ip": "192.0.2.1"},
        ActionKind.BLOCK,
        "admin-only-from-office",
        403,
    ),
    (
        "admin from the office",
        {"uri_path": "/admin/users", "client_ip": "10.1.2.3", "headers": BROWSER},
        ActionKind.ALLOW,
        "Default_Action",
        None,
    ),
    (
        "scanner on admin, from the office",
        {"uri_path": "/admin", "client_ip": "10.1.2.3", "headers": (("User-Agent", "SQLMap/1.7"),)},
        ActionKind.BLOCK,
        "block-scanners-on-admin",
        None,
    ),
    (
        "overridden group rule counts",
        {"query_string": "debug=1", "headers": BROWSER},
        ActionKind.ALLOW,
        "Default_Action",
        None,
    ),
    (
        "group label blocks later",
        {"uri_path": "/search", "query_string": "q=1%27%20OR%20%271%27=%271"},
        ActionKind.BLOCK,
        "block-tagged-sqli",
        None,
    ),
    ("group rule with group body", {"method": "TRACE"}, ActionKind.BLOCK, "shop-rules", 405),
    (
        "oversized body",
        {"method": "POST", "body": b"a" * 64, "body_size": 20000, "body_oversize": True},
        ActionKind.BLOCK,
        "oversized-body",
        None,
    ),
    (
        "xss in a JSON comment",
        {
            "method": "POST",
            "headers": (("Content-Type", "application/json"),),
            "body": b'{"comment": "<script>alert(1)</script>", "title": "hi"}',
        },
        ActionKind.BLOCK,
        "xss-in-comments",
        None,
    ),
]


@pytest.mark.parametrize(
    ("request_fields", "action", "terminating", "status"),
    [r[1:] for r in REQUESTS],
    ids=[r[0] for r in REQUESTS],
)
def test_imported_acl_keeps_behaviour(
    imported: tuple[str, Any],
    request_fields: dict[str, Any],
    action: ActionKind,
    terminating: str,
    status: int | None,
) -> None:
    acl = imported[1].acls["shop-acl"]
    fields = {"method": "GET", "uri_path": "/", **request_fields}
    verdict = evaluate(acl, WafRequest(**fields))
    assert (verdict.action, verdict.terminating_rule) == (action, terminating)
    assert (verdict.response.status if verdict.response else None) == status


def test_imported_acl_overrides_and_inserted_headers(imported: tuple[str, Any]) -> None:
    acl = imported[1].acls["shop-acl"]
    debug = evaluate(acl, WafRequest("GET", "/", "debug=1", headers=BROWSER))
    assert [(m.rule, m.action) for m in debug.matches] == [("block-debug-param", ActionKind.COUNT)]
    api = evaluate(acl, WafRequest("GET", "/api/items"))
    assert api.insert_headers == (("x-wafproxy-api-client", "yes"),)
    blocked = evaluate(acl, WafRequest("GET", "/", headers=(("X-Forwarded-For", "198.51.100.9"),)))
    assert blocked.response is not None
    assert blocked.response.body == b"Blocked by the shop's firewall.\n"
    assert ("reason", "ip-reputation") in blocked.response.headers


def test_imported_yaml_errors_surface_from_the_engine(tmp_path: Path) -> None:
    """Geo rules import, but need a database the importer cannot know: the warning says so."""
    acl = web_acl(rule({"GeoMatchStatement": {"CountryCodes": ["NL"]}}))
    result = convert([("acl.json", acl)])
    assert any("need geo_database" in w for w in result.warnings)
    path = tmp_path / "geo.yaml"
    path.write_text(dump_yaml(result.data, result.warnings), encoding="utf-8")
    with pytest.raises(ConfigErrors, match="geo_database"):
        load_rule_files([path])


def test_search_string_round_trip_through_get_output() -> None:
    encoded = base64.b64encode("é/ü".encode()).decode()
    document = {"WebACL": web_acl(rule(byte_match(SearchString=encoded))), "LockToken": "x"}
    assert search_value(document, SearchStringEncoding.AUTO) == "é/ü"
