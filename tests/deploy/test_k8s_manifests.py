"""The Kubernetes manifests, rendered by kubectl's kustomize from each overlay: schemas,
and what the mesh needs of them (ports, probes, drain, keys, network, GPUs, weights)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_support import (
    CONFIG_MOUNT,
    K8S,
    OVERLAYS,
    Manifest,
    all_containers,
    copy_k8s,
    main_container,
    mesh_configs,
    of_kind,
    parse_cli,
    pod_spec,
    render,
    served,
)

from speechmesh.runtime import registry

# The oldest Kubernetes the manifests support (native gRPC probes, the preStop sleep
# action) and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# What the pod spends stopping beyond the preStop sleep and the drain.
STOP_MARGIN_S = (1, 15)


# The module renders (or walks through) once: keep its tests on one worker.
pytestmark = pytest.mark.xdist_group("k8s-manifests")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """Every overlay, the nvidia overlay with the queue-depth autoscaling component, and the
    cpu overlay with the HTTP component."""
    manifests = {name: render(K8S / "overlays" / name) for name in OVERLAYS}
    k8s = copy_k8s(tmp_path_factory.mktemp("queue"))
    overlay = k8s / "overlays" / "queue"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../nvidia]\ncomponents: [../../components/queue-autoscaling]\n"
    )
    manifests["nvidia+queue-autoscaling"] = render(overlay)
    overlay = k8s / "overlays" / "http"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../cpu]\ncomponents: [../../components/http]\n"
    )
    manifests["cpu+http"] = render(overlay)
    return manifests


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    return rendered[request.param]


def test_every_manifest_validates_against_the_kubernetes_schemas(rendered):
    errors = []
    for name, manifests in rendered.items():
        for manifest in manifests:
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(manifest, version, strict=True)
                except (
                    kubernetes_validate.ValidationError,
                    kubernetes_validate.utils.SchemaNotFoundError,
                ) as error:
                    kind, title = manifest["kind"], manifest["metadata"]["name"]
                    errors.append(f"{name}: {kind}/{title} on {version}: {error.message}")
    assert not errors, "\n".join(errors)


def test_every_configured_service_has_its_deployment_service_hpa_and_pdb(overlay):
    configs = mesh_configs(overlay)
    configured = {name for config in configs.values() for name in config.services}
    deployments = of_kind(overlay, "Deployment")
    assert {served(d)[0] for d in deployments.values()} == configured
    assert set(deployments) == configured
    services, hpas, pdbs = (
        of_kind(overlay, k) for k in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    )
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        target = hpas[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        cpu = [m for m in hpas[name]["spec"]["metrics"] if m["type"] == "Resource"]
        assert cpu and cpu[0]["resource"]["name"] == "cpu"
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_probes_and_ports_are_where_the_servers_listen(overlay):
    configs = mesh_configs(overlay)
    services = of_kind(overlay, "Service")
    for name, deployment in of_kind(overlay, "Deployment").items():
        service, config_file = served(deployment)
        config = configs[config_file]
        listens = config.services[service]
        # Probes and the gateway reach the pod IP: the server must not bind loopback only.
        assert listens.host in ("0.0.0.0", "::", "[::]"), (name, listens.host)
        container = main_container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": listens.port, "metrics": config.telemetry.metrics_port}
        probes = {
            kind: container[kind]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
            if kind in container
        }
        assert probes["readinessProbe"]["grpc"] == {"port": listens.port}
        for kind, probe in probes.items():
            port = (probe.get("grpc") or probe.get("tcpSocket"))["port"]
            assert port == listens.port, (name, kind)
        if name != "gateway":
            # Models load after the port opens: a backend is only started, ready and
            # alive through grpc.health.v1.
            assert set(probes) == {"startupProbe", "readinessProbe", "livenessProbe"}
            assert all("grpc" in probe for probe in probes.values()), name
        (port,) = services[name]["spec"]["ports"]
        assert (port["port"], port["targetPort"]) == (listens.port, "grpc")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(config.telemetry.metrics_port)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_the_gateway_finds_every_backend_through_its_headless_service(overlay):
    configs = mesh_configs(overlay)
    gateway, backends = configs["gateway.yaml"], configs["backends.yaml"]
    services = of_kind(overlay, "Service")
    targets = {b.name: b.target for b in gateway.backends()}
    assert set(targets) == set(backends.services)
    for name, target in targets.items():
        host, _, port = target.removeprefix("dns:///").rpartition(":")
        assert target.startswith("dns:///") and host == name, target
        assert services[host]["spec"]["clusterIP"] == "None", "kube-proxy would balance connections"
        assert int(port) == backends.services[name].port
    assert services["gateway"]["spec"].get("clusterIP") != "None"


def test_stopping_waits_for_the_drain(overlay):
    configs = mesh_configs(overlay)
    for name, deployment in of_kind(overlay, "Deployment").items():
        drain = configs[served(deployment)[1]].drain_grace_s
        sleep = main_container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert sleep + drain + STOP_MARGIN_S[0] <= grace <= sleep + drain + STOP_MARGIN_S[1], name


def test_every_container_runs_unprivileged_on_a_read_only_root(overlay):
    for name, deployment in of_kind(overlay, "Deployment").items():
        spec = pod_spec(deployment)
        assert spec["automountServiceAccountToken"] is False
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] >= 10000 and pod["runAsGroup"] >= 10000
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in all_containers(deployment):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["runAsNonRoot"] is True, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests)
            assert container["image"].split(":")[-1], "images carry a tag"


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items()


def test_only_the_gateway_reaches_the_backends(overlay):
    policies = of_kind(overlay, "NetworkPolicy").values()
    configs = mesh_configs(overlay)
    backend_ports = {s.port for s in configs["backends.yaml"].services.values()}
    metrics = configs["backends.yaml"].telemetry.metrics_port
    deployments = of_kind(overlay, "Deployment")
    gateway_labels = deployments["gateway"]["spec"]["template"]["metadata"]["labels"]
    deny_all = [
        p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
    ]
    assert deny_all and {"Ingress", "Egress"} <= set(deny_all[0]["spec"]["policyTypes"])
    for name, deployment in deployments.items():
        if name == "gateway":
            continue
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        rules = [
            r
            for p in policies
            if _selects(p["spec"]["podSelector"], labels)
            for r in p["spec"].get("ingress", [])
        ]
        from_gateway = set()
        for rule in rules:
            assert rule.get("from"), f"{name}: an ingress rule open to every source"
            ports = {p["port"] for p in rule["ports"]}
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    assert ports == {metrics}, (
                        f"{name}: another namespace reaches more than metrics"
                    )
                else:
                    assert _selects(peer["podSelector"], gateway_labels), name
                    assert peer["podSelector"]["matchLabels"] == {
                        "app.kubernetes.io/component": "gateway"
                    }
                    from_gateway |= ports
        assert backend_ports <= from_gateway, name


def test_the_gateway_takes_api_keys_from_a_secret(overlay):
    configs = mesh_configs(overlay)
    auth = configs["gateway.yaml"].auth
    assert auth.enabled and auth.keys_file is not None
    deployment = of_kind(overlay, "Deployment")["gateway"]
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main_container(deployment)["volumeMounts"]}
    volume = volumes[mounts[str(Path(auth.keys_file).parent)]]
    assert volume["secret"]["secretName"] == "speechmesh-api-keys"
    assert "optional" not in volume["secret"], "without keys the gateway must not start"
    assert not configs["backends.yaml"].auth.enabled


def test_backends_pull_their_weights_before_serving_offline(overlay):
    configs = mesh_configs(overlay)
    for name, deployment in of_kind(overlay, "Deployment").items():
        if name == "gateway":
            continue
        service, config_file = served(deployment)
        inits = pod_spec(deployment)["initContainers"]
        pull = inits[0]["command"]
        assert pull == [
            "speechmesh",
            "models",
            "pull",
            "--config",
            f"{CONFIG_MOUNT}/{config_file}",
            "--service",
            service,
        ]
        for init in inits:
            assert init["command"][:3] == ["speechmesh", "models", "pull"]
            parse_cli(init["command"][1:])
            assert init["image"] == main_container(deployment)["image"]
        main = main_container(deployment)
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["HF_HUB_OFFLINE"] == "1"
        weights = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}["weights"]
        for container in [*inits, main]:
            home = {e["name"]: e.get("value") for e in container["env"]}["HF_HOME"]
            assert Path(weights) in Path(home).parents, (name, container["name"])
        for model in configs[config_file].services[service].models:
            if model.options.get("aux_cache"):
                assert Path(weights) in Path(model.options["aux_cache"]).parents


def test_configured_families_are_registered(overlay):
    # Only the services this tree has: a family can be checked once its service is here.
    for config in mesh_configs(overlay).values():
        for name, service in config.services.items():
            if name in registry.SERVICES:
                for model in service.models:
                    assert model.family in registry.FAMILIES, (name, model.id)


def test_gpu_services_get_a_gpu_on_gpu_nodes_only_in_the_nvidia_overlay(rendered):
    for overlay_name in OVERLAYS:
        manifests = rendered[overlay_name]
        backends = mesh_configs(manifests)["backends.yaml"]
        for name, deployment in of_kind(manifests, "Deployment").items():
            container, spec = main_container(deployment), pod_spec(deployment)
            service = backends.services.get(name)
            on_gpu = service is not None and any(
                m.device.startswith("cuda") for m in service.models
            )
            resources = container["resources"]
            if on_gpu:
                assert overlay_name == "nvidia", name
                assert (
                    resources["limits"]["nvidia.com/gpu"]
                    == resources["requests"]["nvidia.com/gpu"]
                    == 1
                )
                assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
                assert {
                    "key": "nvidia.com/gpu",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                } in spec["tolerations"]
                assert container["image"].endswith("-cuda")
            else:
                assert "nvidia.com/gpu" not in resources["limits"], name
                assert "nodeSelector" not in spec and not container["image"].endswith("-cuda"), name
    gpu_services = {
        name
        for name, service in mesh_configs(rendered["nvidia"])["backends.yaml"].services.items()
        if any(m.device.startswith("cuda") for m in service.models)
    }
    assert gpu_services == {"stt", "conversion", "indextts"}


def test_queue_depth_autoscaling_adds_the_custom_metric_to_each_backend(rendered):
    hpas = of_kind(rendered["nvidia+queue-autoscaling"], "HorizontalPodAutoscaler")
    for name, hpa in hpas.items():
        pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        if name == "gateway":
            assert not pods
            continue
        assert [p["metric"]["name"] for p in pods] == ["speechmesh_batch_queue_depth"], name
        assert pods[0]["target"]["type"] == "AverageValue"


def test_http_is_off_in_the_overlays_and_the_component_turns_it_on(rendered):
    for overlay_name in OVERLAYS:
        assert not mesh_configs(rendered[overlay_name])["gateway.yaml"].gateway.http.enabled
    manifests = rendered["cpu+http"]
    http = mesh_configs(manifests)["gateway.yaml"].gateway.http
    assert http.enabled and http.host == "0.0.0.0"
    container = main_container(of_kind(manifests, "Deployment")["gateway"])
    assert {"name": "http", "containerPort": http.port, "protocol": "TCP"} in container["ports"]
    service_ports = of_kind(manifests, "Service")["gateway"]["spec"]["ports"]
    assert {"name": "http", "port": http.port, "targetPort": "http", "protocol": "TCP"} in (
        service_ports
    )
    policy = of_kind(manifests, "NetworkPolicy")["gateway"]
    assert {"port": http.port, "protocol": "TCP"} in policy["spec"]["ingress"][0]["ports"]


def test_the_http_components_gateway_config_is_the_base_one_with_http_on():
    base = yaml.safe_load((K8S / "base" / "config" / "gateway.yaml").read_text())
    component = yaml.safe_load((K8S / "components" / "http" / "gateway.yaml").read_text())
    assert component["gateway"].pop("http")["enabled"] is True
    assert component == base
