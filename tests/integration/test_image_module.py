"""The pycontainer_image module: sources, state absent, push, check mode predictions and diffs."""

from __future__ import annotations

import pytest
from ansible_collections.pycontainer.engine.plugins.module_utils.ansible.image import ensure_image
from ansible_collections.pycontainer.engine.plugins.module_utils.engine import Engine
from ansible_collections.pycontainer.engine.plugins.module_utils.errors import ImageNotFound

from tests.fixtures.images import File, build_tar
from tests.integration.helpers import write_engine_config
from tests.integration.test_ansible import adhoc

pytestmark = pytest.mark.integration


def params(**kw):
    base = {"name": None, "tag": None, "state": "present", "source": "pull", "path": None, "pull": "missing",
            "force": False, "push": False, "platform": None}
    base.update(kw)
    return base


def test_pull_always_predicts_and_changes_only_on_new_id(engine_config, oci_builder):
    engine = Engine(engine_config)
    ref, built = oci_builder.push("mod/app:v1", [[File("v", "1")]], {})
    check = ensure_image(engine, params(name=ref), check_mode=True)
    assert check["changed"] and check["diff"] == {"before": {"id": None},
                                                  "after": {"id": built.images[0].config_digest}}
    assert engine.images.list() == []  # check mode wrote nothing
    first = ensure_image(engine, params(name=ref), check_mode=False)
    assert first["changed"] and first["image"]["Id"] == built.images[0].config_digest
    assert not ensure_image(engine, params(name=ref, pull="always"), check_mode=True)["changed"]
    assert not ensure_image(engine, params(name=ref, pull="always"), check_mode=False)["changed"]
    # A new image behind the tag: check mode sees it coming, the real run pulls it.
    _ref, newer = oci_builder.push("mod/app:v1", [[File("v", "2")]], {})
    check = ensure_image(engine, params(name=ref, pull="always"), check_mode=True)
    assert check["changed"] and check["diff"]["after"]["id"] == newer.images[0].config_digest
    assert engine.images.inspect(ref).id == built.images[0].config_digest
    done = ensure_image(engine, params(name=ref, pull="always"), check_mode=False)
    assert done["changed"] and done["image"]["Id"] == newer.images[0].config_digest
    # state=absent
    assert ensure_image(engine, params(name=ref, state="absent"), check_mode=True)["changed"]
    assert engine.images.inspect(ref)
    gone = ensure_image(engine, params(name=ref, state="absent"), check_mode=False)
    assert gone["changed"] and gone["diff"]["after"]["id"] is None and "image" not in gone
    assert not ensure_image(engine, params(name=ref, state="absent"), check_mode=False)["changed"]


def test_load_import_and_push(engine_config, oci_builder, registry, tmp_path):
    engine = Engine(engine_config)
    ref, built = oci_builder.push("mod/src:v1", [[File("a", "a")]], {})
    engine.images.pull(ref)
    archive = str(tmp_path / "a.tar")
    engine.images.save_to_file([ref], archive)
    other = Engine(type(engine_config)(root=str(tmp_path / "root2"), blocked_registries=["docker.io"]))
    check = ensure_image(other, params(name=ref, source="load", path=archive), check_mode=True)
    assert check["changed"] and check["diff"]["after"]["id"] == built.images[0].config_digest
    loaded = ensure_image(other, params(name=ref, source="load", path=archive), check_mode=False)
    assert loaded["changed"] and loaded["image"]["RepoTags"] == [ref]
    assert not ensure_image(other, params(name=ref, source="load", path=archive, force=True),
                            check_mode=False)["changed"]  # same ID again
    with pytest.raises(ImageNotFound, match="does not contain"):
        ensure_image(other, params(name="other:v9", source="load", path=archive), check_mode=True)

    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(build_tar([File("etc/motd", "hi")]))
    target = f"{registry.host}/mod/imported"
    assert ensure_image(other, params(name=target, tag="v1", source="import", path=str(tarball)),
                        check_mode=True)["changed"]
    imported = ensure_image(other, params(name=target, tag="v1", source="import", path=str(tarball), push=True),
                            check_mode=False)
    assert imported["changed"] and "Pushed image" in imported["actions"][-1]
    again = ensure_image(other, params(name=target, tag="v1", source="import", path=str(tarball)),
                         check_mode=False)
    assert not again["changed"]  # present: not imported again
    third = Engine(type(engine_config)(root=str(tmp_path / "root3")))
    assert third.images.pull(f"{target}:v1").id == imported["image"]["Id"]


def test_module_through_ansible_with_load_and_absent(engine_root, registry, oci_builder, tmp_path):
    config = write_engine_config(str(tmp_path / "engine.json"), registry.host)
    engine_args = f"root={engine_root} config={config}"
    ref, built = oci_builder.push("mod/ans:v1", [[File("a", "a")]], {})
    source = Engine(type(Engine.from_options(root=str(tmp_path / "src"), config_path=config).config)(
        root=str(tmp_path / "src")))
    source.images.pull(ref)
    archive = str(tmp_path / "a.tar")
    source.images.save_to_file([ref], archive)
    rc, check = adhoc("pycontainer_image", f"name={ref} source=load path={archive} {engine_args}", "--check", "--diff")
    assert rc == 0 and check["changed"] is True and "image" not in check
    rc, loaded = adhoc("pycontainer_image", f"name={ref} source=load path={archive} {engine_args}")
    assert rc == 0 and loaded["changed"] is True and loaded["image"]["Id"] == built.images[0].config_digest
    rc, gone = adhoc("pycontainer_image", f"name={ref} state=absent {engine_args}")
    assert rc == 0 and gone["changed"] is True
    rc, failed = adhoc("pycontainer_image", f"name={ref} source=load {engine_args}")
    assert rc != 0 and "path" in failed["msg"]
