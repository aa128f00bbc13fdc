"""Docker-shaped views of engine records: `ps`/`images` rows and `inspect` documents.

One place builds them, so the CLI's tables and JSON and the modules' return values agree.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from typing import TYPE_CHECKING, Any

from ..records.containers import ContainerRecord
from ..records.hostconfig import HostConfig
from ..timefmt import human_duration, human_size, parse_rfc3339

if TYPE_CHECKING:
    from ..image.store import ImageRecord


def short_id(full_id: str) -> str:
    return full_id.split(":", 1)[-1][:12]


def _go_time(rfc3339: str) -> str:
    """Docker's CreatedAt form: 2024-01-02 15:04:05 +0000 UTC."""
    ts = parse_rfc3339(rfc3339)
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def container_status(record: ContainerRecord, now: float | None = None) -> str:
    now = time.time() if now is None else now
    state = record.state
    if state.status in ("running", "paused"):
        up = "Up " + human_duration(now - parse_rfc3339(state.started_at))
        return up + " (Paused)" if state.status == "paused" else up
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration(now - parse_rfc3339(state.finished_at))} ago"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {human_duration(now - parse_rfc3339(state.finished_at))} ago"
    if state.status == "removing":
        return "Removal In Progress"
    return state.status.capitalize()


def container_row(record: ContainerRecord, trunc: bool = True, now: float | None = None) -> dict[str, Any]:
    """The fields `docker ps --format` knows, with Docker's spelling and formatting.

    One bad record never fails the listing: whatever cannot be shown of it is left blank."""
    now = time.time() if now is None else now
    try:
        return _container_row(record, trunc, now)
    except (KeyError, TypeError, ValueError, AttributeError):
        return {"Command": '""', "CreatedAt": "", "ID": record.id[:12] if trunc else record.id, "Image": "",
                "Labels": "", "LocalVolumes": "0", "Mounts": "", "Names": record.name, "Networks": "", "Ports": "",
                "RunningFor": "", "Size": "0B", "State": "dead", "Status": "Dead"}


def _container_row(record: ContainerRecord, trunc: bool, now: float) -> dict[str, Any]:
    # Docker quotes the arguments that hold a space: sh -c 'exit 4'
    args = record.config.args
    command = " ".join(args[:1] + [f"'{a}'" if " " in a else a for a in args[1:]])
    labels = ",".join(f"{k}={v}" for k, v in sorted(record.config.labels.items()))
    mounts = container_mounts(record)  # one read of the container's mounts file per row
    return {
        "Command": _quote(_ellipsis(command, 20) if trunc else command),
        "CreatedAt": _go_time(record.config.created),
        "ID": record.id[:12] if trunc else record.id,
        "Image": record.config.image_name,
        "Labels": labels,
        "LocalVolumes": str(sum(1 for m in mounts if m["Type"] == "volume")),
        "Mounts": ",".join(_ellipsis(m.get("Name") or m.get("Source", ""), 15) if trunc else
                           m.get("Name") or m.get("Source", "") for m in mounts),
        "Names": record.name,
        "Networks": "" if record.config.host_config.network_mode.startswith("container:") else
                    record.config.host_config.network_mode,
        "Ports": _ports_column(record),
        "RunningFor": human_duration(now - parse_rfc3339(record.config.created)) + " ago",
        "Size": "0B",
        "State": record.state.status,
        "Status": container_status(record, now),
    }


def _network_settings(record: ContainerRecord) -> dict[str, Any]:
    from ..network.views import network_settings

    return network_settings(record.state.network_settings, record.state.status in ("running", "paused"))


def _ports_column(record: ContainerRecord) -> str:
    """Docker's PORTS: `0.0.0.0:8080->80/tcp`, only while the container runs."""
    if record.state.status != "running" or not record.state.network_settings:
        return ""
    from ..network.ports import ports_column_from_view

    return ports_column_from_view(record.state.network_settings.get("Ports"))


def _quote(text: str) -> str:
    """Go's strconv.Quote for the printable text Docker puts in the COMMAND column."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def image_rows(record: ImageRecord, trunc: bool = True, now: float | None = None) -> list[dict[str, Any]]:
    """One `docker images` row per tag (or one `<none>` row for a dangling image)."""
    now = time.time() if now is None else now
    image_id = short_id(record.id) if trunc else record.id
    digest = record.repo_digests[0].rsplit("@", 1)[-1] if record.repo_digests else "<none>"
    base = {
        "Containers": "N/A",
        "CreatedAt": _go_time(record.created),
        "CreatedSince": human_duration(now - parse_rfc3339(record.created)) + " ago",
        "Digest": digest,
        "ID": image_id,
        "SharedSize": "N/A",
        "Size": human_size(record.size, 3),
        "UniqueSize": "N/A",
        "VirtualSize": human_size(record.size, 3),
    }
    # Pulled by digest only: Docker shows the repository with a <none> tag.
    digest_repos = sorted({d.rpartition("@")[0] for d in record.repo_digests})
    tags = record.repo_tags or [f"{r}:<none>" for r in digest_repos] or ["<none>:<none>"]
    rows = []
    for tag in tags:
        repository, _sep, tag_name = tag.rpartition(":")
        repo_digest = next((d for d in record.repo_digests if d.rpartition("@")[0] == repository), None)
        row = {**base, "Repository": repository, "Tag": tag_name}
        if repo_digest:
            row["Digest"] = repo_digest.rpartition("@")[2]
        rows.append(row)
    return rows


def history_row(entry: dict, trunc: bool = True, human: bool = True, now: float | None = None) -> dict[str, Any]:
    """One `docker history` row (entry from ImageService.history)."""
    now = time.time() if now is None else now
    created_by = entry.get("created_by", "")
    image_id = entry.get("id", "<missing>")
    if trunc:
        image_id = short_id(image_id) if image_id.startswith("sha256:") else image_id
        created_by = _ellipsis(created_by, 45)
    created = entry.get("created", "")
    return {
        "ID": image_id,
        "CreatedSince": (human_duration(now - parse_rfc3339(created)) + " ago") if human and created else created,
        "CreatedAt": created,
        "CreatedBy": created_by,
        "Size": human_size(entry.get("size", 0), 3) if human else str(entry.get("size", 0)),
        "Comment": entry.get("comment", ""),
    }


def inspect_image(record: ImageRecord) -> dict[str, Any]:
    config = record.config
    return {
        "Id": record.id,
        "RepoTags": list(record.repo_tags),
        "RepoDigests": list(record.repo_digests),
        "Parent": "",
        "Comment": config.get("comment", "") or (record.extra or {}).get("comment", ""),
        "Created": record.created,
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": record.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list(record.diff_ids)},
        "History": config.get("history") or [],
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def inspect_container(record: ContainerRecord) -> dict[str, Any]:
    c, s = record.config, record.state
    args = c.args
    return {
        "Id": c.id,
        "Name": "/" + c.name,
        "Created": c.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": s.status,
            "Running": s.status in ("running", "paused"),
            "Paused": s.status == "paused",
            "Restarting": s.status == "restarting",
            "OOMKilled": s.oom_killed,
            "Dead": s.status == "dead",
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
        },
        "Image": c.image,
        "LogPath": (f"{record.directory}/{c.id}-json.log" if c.host_config.log_driver == "json-file" else ""),
        "RestartCount": s.restart_count,
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Env": list(c.env),
            "Cmd": c.cmd,
            "Entrypoint": c.entrypoint,
            "Image": c.image_name,
            "WorkingDir": c.working_dir,
            "Labels": dict(c.labels),
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
            "StdinOnce": False,
            "AttachStdin": c.open_stdin,
            "StopSignal": c.stop_signal or None,
            "StopTimeout": c.stop_timeout,
        },
        "HostConfig": host_config_view(c.host_config),
        "Mounts": container_mounts(record),
        "NetworkSettings": _network_settings(record),
    }


def host_config_view(h: HostConfig) -> dict[str, Any]:
    """HostConfig under Docker's names (the subset the engine supports)."""
    from ..container.option_table import inspect_fields  # only inspect needs the table, not `ps`

    return {
        "NetworkMode": h.network_mode or "none",
        **inspect_fields("HostConfig", h),  # the option table's: modes, security, resources, GroupAdd
        "AutoRemove": h.auto_remove,
        "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "LogConfig": {"Type": h.log_driver, "Config": dict(h.log_options)},
        **_host_config_mounts(h),
    }


def _host_config_mounts(h: HostConfig) -> dict[str, Any]:
    """Where Docker files each user mount: ``-v`` under Binds, ``--mount`` under Mounts, ``--tmpfs`` under Tmpfs."""
    from ..runtime.volumes import volume_flag_text

    origin = {id(m): m.options.get("origin", "mount-flag") for m in h.mounts}
    binds = [volume_flag_text(m) for m in h.mounts if origin[id(m)] == "volume-flag"]
    tmpfs = {m.target: ",".join(f"{k}={v}" for k, v in sorted(m.options.items()) if k not in ("origin", "flags"))
             for m in h.mounts if origin[id(m)] == "tmpfs-flag"}
    mounts = [{"Type": m.type, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
              for m in h.mounts if origin[id(m)] not in ("volume-flag", "tmpfs-flag", "image")]
    return {"Binds": binds or None, "Mounts": mounts or None, "Tmpfs": tmpfs or None}


def container_mounts(record: ContainerRecord) -> list[dict[str, Any]]:
    """Docker's inspect ``Mounts``: the container's resolved mount points (runtime/volumes.py)."""
    from ..runtime.volumes import mount_points

    keys = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
    try:
        points = mount_points(record.directory)
    except ValueError:  # a damaged mounts file: nothing to show, the record stays listable and removable
        return []
    return [{k: p[k] for k in keys if k in p} for p in points if isinstance(p, dict)]


def volume_row(volume: Any) -> dict[str, Any]:
    """The fields `docker volume ls --format` knows."""
    return {
        "Availability": "N/A",
        "CreatedAt": volume.created_at,
        "Driver": volume.driver,
        "Group": "N/A",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(volume.labels.items())),
        "Links": "N/A",
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Scope": "local",
        "Size": "N/A",
        "Status": "N/A",
    }


STATS_COLUMNS = [("CONTAINER ID", "ID"), ("NAME", "Name"), ("CPU %", "CPUPerc"), ("MEM USAGE / LIMIT", "MemUsage"),
                 ("MEM %", "MemPerc"), ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs")]


def _binary_size(size: float) -> str:
    """go-units BytesSize (binary units), as `docker stats` prints memory."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{units[i]}"


def stats_row(record: ContainerRecord, before: tuple[float, dict] | None, after: tuple[float, dict] | None
              ) -> dict[str, Any]:
    """`docker stats` fields from two cgroup samples (monotonic time, stats dict); "--" when not running."""
    row = {"ID": record.id[:12], "Container": record.id[:12], "Name": record.name, "CPUPerc": "--",
           "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"}
    if before is None or after is None:
        return row
    (t0, s0), (t1, s1) = before, after
    elapsed_ns = max((t1 - t0) * 1e9, 1.0)
    cpu = (s1.get("cpu_usage_ns", 0) - s0.get("cpu_usage_ns", 0)) / elapsed_ns * 100.0
    usage, limit = s1.get("memory_usage", 0), s1.get("memory_limit", 0)
    row.update(
        CPUPerc=f"{max(cpu, 0.0):.2f}%",
        MemUsage=f"{_binary_size(usage)} / {_binary_size(limit)}",
        MemPerc=f"{(usage / limit * 100.0) if limit else 0.0:.2f}%",
        NetIO=f"{human_size(s1.get('net_rx_bytes', 0), 3)} / {human_size(s1.get('net_tx_bytes', 0), 3)}",
        BlockIO=(f"{human_size(s1.get('blkio_read_bytes', 0), 3)} / {human_size(s1.get('blkio_write_bytes', 0), 3)}"),
        PIDs=str(s1.get("pids_current", 0)),
    )
    return row


def container_size(record: ContainerRecord, engine: Any = None) -> str:
    """`ps -s`: the writable layer's size, and with the image: "0B (virtual 4.26MB)"."""
    import os

    total = 0
    for base, _dirs, files in os.walk(os.path.join(record.directory, "upper")):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                continue
    virtual = total
    if engine is not None:
        with contextlib.suppress(Exception):
            virtual += engine.images.inspect(record.config.image).size
    return f"{human_size(total, 3)} (virtual {human_size(virtual, 3)})"
