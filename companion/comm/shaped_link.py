"""A really slow network: every rank in its own network namespace, its NIC shaped by the kernel.

:class:`ShapedLink` describes the network; :class:`ShapedNetwork` builds it and tears it down.
Each rank gets a private network namespace holding one end of a ``veth`` pair (``eth0``,
``10.77.0.<rank + 1>``); the other ends sit on a Linux bridge in a hub namespace, the way a
cluster's NICs sit on a switch. The egress of every rank's ``eth0`` passes a token-bucket filter
(``tc qdisc ... tbf rate R``), so every byte gloo sends over TCP is really throttled by the
kernel. Nothing sleeps.

Why one veth per rank and not the shared loopback: on one loopback device all ranks' traffic
queues behind one qdisc, so a two-rank all-reduce sees half the rate in each direction. With a
veth per rank each rank has its own full-duplex link of rate ``R``, which is what the alpha-beta
model of :class:`~companion.comm.Link` assumes.

What the shaping charges: ``tbf`` counts whole Ethernet frames (IP and TCP headers and the
14-byte Ethernet header included), so the payload rate is ``R * mss / (mtu + 14)``, about
0.956 R at the default MTU of 1500 (:attr:`ShapedLink.payload_bytes_per_s`).

Lifetime: each namespace is held by a ``sleep`` process started with ``unshare -n``, which the
kernel kills when the process that made it dies (``PR_SET_PDEATHSIG``); a namespace disappears
with the last process in it. So no namespace, veth or qdisc outlives a launch, whether it ends
normally, by an exception in a rank, by a timeout, by Ctrl-C or by the caller being killed.
Needs ``unshare``, ``nsenter``, ``ip`` and ``tc``, and either root or a kernel that lets an
ordinary user make a user namespace (``unshare -rn``): then the namespaces live inside one user
namespace in which we are root, and each rank joins it before its network namespace. Where
neither works, :class:`ShapedNetwork` raises :class:`PermissionError` naming
:class:`~companion.comm.ModelledLink` as the fallback; nothing falls back silently.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from .cost_model import BYTES_PER_S_PER_GBPS, Link

#: Bytes of Ethernet header that ``tbf`` counts on top of each IP packet.
ETHERNET_HEADER_BYTES = 14
#: IPv4 (20) plus TCP with timestamps (32): the per-packet headers inside the MTU.
IP_TCP_HEADER_BYTES = 52
#: Name of each rank's interface inside its namespace; gloo is pinned to it.
IFNAME = "eth0"
#: The default bucket holds this many seconds of the rate (at least :data:`MIN_BURST_BYTES`).
BURST_REFILL_S = 2e-3
MIN_BURST_BYTES = 64 * 1024
#: Environment variable naming a file where every built network records its holders (tests).
REGISTRY_ENV = "COMPANION_SHAPED_REGISTRY"
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_PR_SET_PDEATHSIG = 1
_TOOLS = ("unshare", "nsenter", "ip", "tc")


@dataclass(frozen=True)
class ShapedLink:
    """A network whose every rank sends at ``rate_gbit_s``, enforced by Linux traffic control.

    Parameters
    ----------
    rate_gbit_s : float
        The token rate of each rank's egress qdisc, in Gbit/s of Ethernet frames (> 0).
    burst_bytes : int or None
        The token bucket's depth. It must hold at least one whole frame (``mtu + 14`` bytes),
        or a frame can never leave. Default: what the rate refills in
        :data:`BURST_REFILL_S` (2 ms), at least 64 KiB. A shallow bucket at a high rate starves
        whenever the kernel's timer wakes late (a loaded machine); a deep one lets a message of
        up to ``burst_bytes`` pass at line rate, which bends the fit at small sizes.
    mtu : int
        The MTU of every veth (576 to 65535 bytes).
    queue_latency_s : float
        How long a packet may wait in the qdisc before it is dropped (tbf's ``latency``); long,
        so TCP never sees drops from the shaper itself.
    """

    rate_gbit_s: float
    burst_bytes: int | None = None
    mtu: int = 1500
    queue_latency_s: float = 1.0

    def __post_init__(self) -> None:
        r = self.rate_gbit_s
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0:
            raise ValueError(f"rate_gbit_s must be a finite number > 0, got {r!r}; e.g. ShapedLink(0.5)")
        if isinstance(self.mtu, bool) or not isinstance(self.mtu, int) or not 576 <= self.mtu <= 65535:
            raise ValueError(f"mtu must be an integer in [576, 65535], got {self.mtu!r}")
        frame = self.mtu + ETHERNET_HEADER_BYTES
        if self.burst_bytes is None:
            default = max(MIN_BURST_BYTES, int(r * BYTES_PER_S_PER_GBPS * BURST_REFILL_S))
            object.__setattr__(self, "burst_bytes", default)
        b = self.burst_bytes
        if isinstance(b, bool) or not isinstance(b, int) or b < frame:
            raise ValueError(f"burst_bytes must be an integer >= one frame (mtu + {ETHERNET_HEADER_BYTES} = "
                             f"{frame} bytes), got {b!r}: a smaller bucket never releases a full frame and TCP "
                             f"stalls until it times out; or leave it None for the default")
        q = self.queue_latency_s
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not math.isfinite(q) or q <= 0:
            raise ValueError(f"queue_latency_s must be a finite number > 0, got {q!r}")
        object.__setattr__(self, "rate_gbit_s", float(r))

    @property
    def rate_bytes_per_s(self) -> float:
        """The shaper's rate in bytes of frames per second."""
        return self.rate_gbit_s * BYTES_PER_S_PER_GBPS

    @property
    def wire_efficiency(self) -> float:
        """Payload bytes per frame byte of a full TCP segment: ``(mtu - 52) / (mtu + 14)``."""
        return (self.mtu - IP_TCP_HEADER_BYTES) / (self.mtu + ETHERNET_HEADER_BYTES)

    @property
    def payload_bytes_per_s(self) -> float:
        """The bandwidth a bulk TCP transfer should see: rate times :attr:`wire_efficiency`."""
        return self.rate_bytes_per_s * self.wire_efficiency

    def expected_link(self, latency_s: float) -> Link:
        """The alpha-beta :class:`Link` this shaping should produce, given a latency (measured)."""
        return Link(latency_s, self.payload_bytes_per_s)

    def tc_args(self, action: str = "add") -> list[str]:
        """The ``tc qdisc <action>`` arguments that shape one interface (``"add"`` or ``"change"``)."""
        if action not in ("add", "change"):
            raise ValueError(f"action must be 'add' (a new qdisc) or 'change' (reshape one), got {action!r}")
        return ["tc", "qdisc", action, "dev", IFNAME, "root", "tbf", "rate", f"{self.rate_bytes_per_s * 8:.0f}bit",
                "burst", str(self.burst_bytes), "latency", f"{self.queue_latency_s * 1e3:.0f}ms"]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _user_namespaces_work() -> bool:
    """Whether this (non-root) user may make a user namespace with a network namespace inside."""
    try:
        out = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def support_problem() -> str | None:
    """Why a :class:`ShapedNetwork` cannot be built here, or ``None`` when it can.

    As root the namespaces are made directly; otherwise inside an unprivileged user namespace
    (``unshare -rn``), where the kernel allows those.
    """
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the tools {missing} are not installed (Debian: util-linux and iproute2)"
    if os.geteuid() != 0 and not _user_namespaces_work():
        return (f"this process runs as uid {os.geteuid()}, not root, and `unshare -rn` (an unprivileged "
                "user namespace) is not permitted here (kernel.unprivileged_userns_clone or "
                "user.max_user_namespaces)")
    return None


class ShapedNetwork:
    """Build the namespaces of a :class:`ShapedLink` for ``world_size`` ranks; a context manager.

    ``with ShapedNetwork(link, 2) as net:`` gives ``net.holder_pids[r]``, the pid whose network
    namespace rank ``r`` joins (:func:`join_namespace`), and ``net.address(r)``. Leaving the
    block kills the holders, and with them the namespaces once the ranks have exited.
    """

    def __init__(self, link: ShapedLink, world_size: int) -> None:
        if not isinstance(link, ShapedLink):
            raise ValueError(f"link must be a comm.ShapedLink, got {link!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or not 1 <= world_size <= 250:
            raise ValueError(f"world_size must be an integer in [1, 250], got {world_size!r}")
        self.link, self.world_size = link, world_size
        self._holders: list[subprocess.Popen] = []
        self.holder_pids: list[int] = []
        #: the pid whose user namespace the ranks join first (unprivileged mode), else None
        self.user_ns_pid: int | None = None
        self._unprivileged = os.geteuid() != 0

    @staticmethod
    def address(rank: int) -> str:
        return f"10.77.0.{rank + 1}"

    def _holder(self, hub: bool = False) -> subprocess.Popen:
        if not self._unprivileged:
            cmd = ["unshare", "-n"]
        elif hub:  # a user namespace (we are root inside it) holding the hub's network namespace
            cmd = ["unshare", "-rn"]
        else:  # a network namespace owned by the hub's user namespace
            cmd = ["nsenter", "-t", str(self.user_ns_pid), "-U", "--preserve-credentials", "unshare", "-n"]
        proc = subprocess.Popen([*cmd, "sleep", "infinity"], preexec_fn=_die_with_parent,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._holders.append(proc)
        return proc

    def _run(self, pid: int, *args: str) -> None:
        user = ["-U", "--preserve-credentials"] if self._unprivileged else []
        out = subprocess.run(["nsenter", "-t", str(pid), *user, "-n", "--", *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"`{' '.join(args)}` in namespace of pid {pid} failed: {out.stderr.strip()}")

    def __enter__(self) -> "ShapedNetwork":
        problem = support_problem()
        if problem is not None:
            raise PermissionError(f"cannot build a shaped network here: {problem}. Run as root, or use "
                                  "comm.ModelledLink, which times real collectives against the alpha-beta model")
        try:
            hub = self._holder(hub=True)
            self._wait_unshared([hub])
            if self._unprivileged:
                self.user_ns_pid = hub.pid
            ranks = [self._holder() for _ in range(self.world_size)]
            self._wait_unshared(ranks)
            self._run(hub.pid, "ip", "link", "add", "br0", "type", "bridge")
            self._run(hub.pid, "ip", "link", "set", "br0", "up")
            for r, holder in enumerate(ranks):
                port = f"port{r}"
                self._run(holder.pid, "ip", "link", "add", IFNAME, "mtu", str(self.link.mtu), "type", "veth",
                          "peer", "name", port, "mtu", str(self.link.mtu), "netns", str(hub.pid))
                self._run(holder.pid, "ip", "link", "set", "lo", "up")
                self._run(holder.pid, "ip", "addr", "add", f"{self.address(r)}/24", "dev", IFNAME)
                self._run(holder.pid, "ip", "link", "set", IFNAME, "up")
                self._run(holder.pid, *self.link.tc_args())
                self._run(hub.pid, "ip", "link", "set", port, "master", "br0")
                self._run(hub.pid, "ip", "link", "set", port, "up")
            self.holder_pids = [h.pid for h in ranks]
            self._register([hub, *ranks])
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _register(holders: list[subprocess.Popen]) -> None:
        """Append ``pid netns-inode`` of each holder to the file ``$COMPANION_SHAPED_REGISTRY``, if set.

        Tests read it to check that exactly these namespaces are gone afterwards, even when the
        network was built in another process.
        """
        path = os.environ.get(REGISTRY_ENV)
        if not path:
            return
        with open(path, "a") as f:
            for h in holders:
                f.write(f"{h.pid} {os.stat(f'/proc/{h.pid}/ns/net').st_ino}\n")

    @staticmethod
    def _wait_unshared(holders: list[subprocess.Popen], timeout_s: float = 5.0) -> None:
        """Wait until each holder has left the caller's namespace (``unshare`` then ``exec sleep``)."""
        import time
        mine = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + timeout_s
        for h in holders:
            while True:
                if h.poll() is not None:
                    err = h.stderr.read().decode().strip() if h.stderr else ""
                    raise PermissionError(f"`unshare -n` failed ({err or 'exit ' + str(h.returncode)}); "
                                          "run as root, or use comm.ModelledLink")
                try:
                    if os.stat(f"/proc/{h.pid}/ns/net").st_ino != mine:
                        break
                except FileNotFoundError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"holder pid {h.pid} did not enter a new namespace in {timeout_s} s")
                time.sleep(0.005)

    def close(self) -> None:
        """Kill every holder (idempotent); the namespaces go with the last process inside them."""
        for h in self._holders:
            if h.poll() is None:
                h.kill()
        for h in self._holders:
            try:
                h.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
            if h.stderr:
                h.stderr.close()
        self._holders.clear()

    def __exit__(self, *exc) -> None:
        self.close()


def _setns(holder_pid: int, kind: str, flag: int, hint: str) -> None:
    """``setns`` the calling thread into ``/proc/<holder_pid>/ns/<kind>``; PermissionError naming the fallback."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{holder_pid}/ns/{kind}", os.O_RDONLY)
    try:
        if libc.setns(fd, flag) != 0:
            raise PermissionError(f"setns into the {kind} namespace of pid {holder_pid} failed: "
                                  f"{os.strerror(ctypes.get_errno())}{hint}; run as root, or use comm.ModelledLink")
    finally:
        os.close(fd)


def join_user_namespace(holder_pid: int) -> None:
    """Join the user namespace of ``holder_pid`` (unprivileged mode); the process must be single-threaded."""
    _setns(holder_pid, "user", _CLONE_NEWUSER, " (a process must be single-threaded to join one)")


def join_namespace(holder_pid: int) -> None:
    """Move the calling thread (a rank's main thread, before it makes any socket) into a namespace.

    Threads started afterwards inherit it; gloo is pinned to :data:`IFNAME` through
    ``GLOO_SOCKET_IFNAME``. Sockets made before the call (the rendezvous store's) stay where they
    were, which is how the ranks still reach the caller's store on 127.0.0.1.
    """
    _setns(holder_pid, "net", _CLONE_NEWNET, "")
    os.environ["GLOO_SOCKET_IFNAME"] = IFNAME


def reshape_own_link(link: ShapedLink) -> None:
    """Give this rank's NIC the shaping of ``link`` (``tc qdisc change`` in its own namespace).

    For a rank of :func:`~companion.comm.launch` run with a :class:`ShapedLink`, between
    collectives: the kernel throttles every byte sent afterwards at the new rate. Each rank shapes
    its own egress, so every rank must call it (then a barrier) for the whole network to change.
    Raises :class:`RuntimeError` outside a shaped network (no ``eth0`` here, or ``tc`` refused).
    """
    if not isinstance(link, ShapedLink):
        raise ValueError(f"link must be a comm.ShapedLink, got {link!r}")
    # only the veth a ShapedNetwork made (its subnet) is ever reshaped, never a host's own eth0
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", IFNAME], capture_output=True, text=True)
    if shown.returncode != 0 or f" {ShapedNetwork.address(0).rsplit('.', 1)[0]}." not in shown.stdout:
        raise RuntimeError(f"this process's {IFNAME} is not a shaped network's: reshape_own_link works inside a "
                           "rank of comm.launch(..., link=comm.ShapedLink(rate))")
    out = subprocess.run(link.tc_args("change"), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(link.tc_args('change'))}` failed: {out.stderr.strip()}")
