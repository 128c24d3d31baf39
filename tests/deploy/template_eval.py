"""The generated CloudFormation template evaluated as CloudFormation would: parameters, conditions, intrinsics.

moto's CloudFormation drops or mis-resolves parts of the template (Fn::Or of conditions, a task definition's roles
and secrets: see test_cloudformation_stack.py), so what a resource *would* be is computed here from the template
itself: ``Ref`` of parameters and pseudo parameters, ``Fn::Sub``, ``Fn::GetAtt`` and ``Ref`` of resources (from
the attribute values a test gives), ``Fn::If`` with ``AWS::NoValue``, ``Fn::Join``, and the condition functions.
Anything else is an error, so a template using more than this is noticed rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ACCOUNT, REGION = "123456789012", "eu-west-1"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str] = {},
        attributes: Mapping[str, str] = {},
    ) -> None:
        self.template = template
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            raw = parameters.get(name, spec.get("Default"))
            if raw is None:
                raise KeyError(f"parameter {name} has no default: give it")
            raw = str(raw)
            kind = spec["Type"]
            self.parameters[name] = raw.split(",") if kind.startswith(("List<", "CommaDelimitedList")) else raw
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise KeyError(f"no such parameters: {sorted(unknown)}")
        self.attributes = dict(attributes)
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def resource(self, name: str) -> dict[str, Any] | None:
        """The resolved resource (None when its condition is false)."""
        resource = self.template["Resources"][name]
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return None
        resolved: dict[str, Any] = self.value(resource)
        return resolved

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::NoValue": NO_VALUE}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.attributes:
            return self.attributes[name]
        raise KeyError(f"Ref {name}: not a parameter, and no value given for the resource")

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match[1]
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.attributes[name])
            return str(self._ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", one, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, arg)] = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(arg[0], {k: self.value(v) for k, v in arg[1].items()})
                return self._sub(arg, {})
            if key == "Fn::GetAtt":
                target = arg if isinstance(arg, str) else ".".join(arg)
                return self.attributes[target]
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::Or":
                return any(self.value(item) for item in arg)
            if key == "Fn::And":
                return all(self.value(item) for item in arg)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not evaluated here")
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}
