"""The defaults a real server fills in when it decodes a request body (SetDefaults_* of
k8s.io/kubernetes/pkg/apis/*/v1) and the create-time touches of the registry
strategies, for the built-in kinds: what ``kubectl get -o yaml`` shows that the
client never sent.

Decoding defaults run on every write (create, update, patch), before validation;
``prepare_namespace_create`` is create-only.
"""

from __future__ import annotations

import base64
from typing import Any

from fluxwatch.sim.validation import coordination
from fluxwatch.sim.validation.meta import as_dict, as_list, as_str

RBAC_GROUP = "rbac.authorization.k8s.io"


def _secret(obj: dict[str, Any]) -> None:
    # stringData is write-only: its values replace data's (conversion to internal).
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = dict(as_dict(obj.get("data")))
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _namespace(obj: dict[str, Any]) -> None:
    md = obj.setdefault("metadata", {})
    name = as_str(md.get("name"))
    if name:
        # Since 1.22 every namespace carries its own name as a label.
        md["labels"] = {**as_dict(md.get("labels")), "kubernetes.io/metadata.name": name}
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Active"


def prepare_namespace_create(obj: dict[str, Any]) -> None:
    """The namespace strategy on create: status Active, and the ``kubernetes``
    finalizer always present (it is removed only through /finalize)."""
    obj["status"] = {"phase": "Active"}
    spec = obj.setdefault("spec", {})
    finalizers = [f for f in as_list(spec.get("finalizers")) if isinstance(f, str)]
    if "kubernetes" not in finalizers:
        finalizers.append("kubernetes")
    spec["finalizers"] = finalizers


def _service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("type", "ClusterIP")
    kind = spec["type"]
    for port in as_list(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        client = config.setdefault("clientIP", {})
        client.setdefault("timeoutSeconds", 10800)
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if kind != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        # A single-stack IPv4 cluster: what the registry fills in when allocating.
        headless_selecting = spec.get("clusterIP") == "None" and spec.get("selector")
        spec.setdefault(
            "ipFamilyPolicy", "RequireDualStack" if headless_selecting else "SingleStack"
        )
        spec.setdefault("ipFamilies", ["IPv4"])


def image_pull_policy(image: str) -> str:
    """``Always`` for an untagged or ``:latest`` image, else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(ctr: dict[str, Any]) -> None:
    ctr.setdefault("terminationMessagePath", "/dev/termination-log")
    ctr.setdefault("terminationMessagePolicy", "File")
    ctr.setdefault("imagePullPolicy", image_pull_policy(as_str(ctr.get("image"))))
    ctr.setdefault("resources", {})
    for port in as_list(ctr.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for ctr in as_list(spec.get(key)):
            if isinstance(ctr, dict):
                _container(ctr)


def _deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = as_dict(spec.get("template"))
    template_spec = template.get("spec")
    if isinstance(template_spec, dict):
        pod_spec(template_spec)


def _network_policy(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        for rule in as_list(spec.get(direction)):
            for port in as_list(as_dict(rule).get("ports")):
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def _binding(obj: dict[str, Any]) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in as_list(obj.get("subjects")):
        # A ServiceAccount subject stays in the core group ("").
        kind = as_dict(subject).get("kind")
        if isinstance(subject, dict) and not subject.get("apiGroup") and kind in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _event(obj: dict[str, Any]) -> None:
    # Not SetDefaults_ but the round trip through corev1.Event: the fields its Go type
    # writes without omitempty come back as their zero values (structs as {}, times as
    # null, reportingComponent and reportingInstance as ""), whatever the client sent.
    for name, zero in (
        ("involvedObject", {}),
        ("source", {}),
        ("firstTimestamp", None),
        ("lastTimestamp", None),
        ("eventTime", None),
        ("reportingComponent", ""),
        ("reportingInstance", ""),
    ):
        obj.setdefault(name, zero)


_BY_KEY = {
    "events": _event,
    "secrets": _secret,
    "namespaces": _namespace,
    "services": _service,
    "deployments.apps": _deployment,
    "networkpolicies.networking.k8s.io": _network_policy,
    "rolebindings.rbac.authorization.k8s.io": _binding,
    "clusterrolebindings.rbac.authorization.k8s.io": _binding,
    # Not a default but the strategy's PrepareForCreate/Update, which runs at this point too.
    "leases.coordination.k8s.io": coordination.drop_disabled_fields,
}


def default(res_key: str, obj: dict[str, Any]) -> None:
    """Fill in, in place, what the real server defaults for ``res_key`` on decode."""
    fill = _BY_KEY.get(res_key)
    if fill is not None:
        fill(obj)
