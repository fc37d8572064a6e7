"""Server-side dry run (``?dryRun=All``, what ``kubectl apply/diff/delete
--dry-run=server`` send): every step but the write runs, admission included, and the
answer is the object as it would be stored, without the resourceVersion a write gives.
"""

from __future__ import annotations

from tests.conformance.conftest import Api
from tests.conftest import helmrelease

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"


async def test_a_dry_run_create_answers_the_defaulted_object_without_a_resource_version(
    api: Api,
) -> None:
    """The dry-run storage copies the object out instead of writing it, so the
    resourceVersion etcd would assign is never set; uid, creationTimestamp, generation,
    defaults and managedFields are."""
    code, answer = await api.post(f"{HRS}?dryRun=All&fieldManager=kubectl", helmrelease("p"))
    assert code == 201
    md = answer["metadata"]
    assert "resourceVersion" not in md
    assert md["uid"] and md["creationTimestamp"] and md["generation"] == 1
    assert answer["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"
    assert [m["manager"] for m in md["managedFields"]] == ["kubectl"]
    code, _ = await api.get(f"{HRS}/p")
    assert code == 404


async def test_a_dry_run_create_in_a_missing_namespace_is_404_like_a_create(api: Api) -> None:
    path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/nowhere/helmreleases?dryRun=All"
    code, status = await api.post(path, helmrelease("p", "nowhere"))
    assert code == 404
    assert status["message"] == 'namespaces "nowhere" not found'


async def test_a_dry_run_update_answers_the_next_generation_and_keeps_the_stored_one(
    api: Api,
) -> None:
    code, created = await api.post(HRS, helmrelease("p"))
    assert code == 201
    changed = {**created, "spec": {**created["spec"], "interval": "5m"}}
    code, answer = await api.put(f"{HRS}/p?dryRun=All", changed)
    assert code == 200
    assert answer["spec"]["interval"] == "5m"
    assert answer["metadata"]["generation"] == 2
    assert answer["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    code, stored = await api.get(f"{HRS}/p")
    assert code == 200
    assert stored == created
