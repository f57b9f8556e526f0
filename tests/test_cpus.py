"""The CPU in words for benchmark tables: the kernel's model name, LLVM's core, the CPU count."""
import builtins

from ferristor import cpus


def test_describe_names_the_model_llvms_core_and_the_cpu_count():
    text = cpus.describe()
    from llvmlite import binding as ll
    assert f"({ll.get_host_cpu_name()})" in text
    assert text.endswith(f", {cpus.available_cpus()} CPUs")
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = None
    if model:
        assert text.startswith(model)


def test_describe_falls_back_to_the_platform_without_proc_cpuinfo(monkeypatch):
    real_open = builtins.open

    def no_cpuinfo(path, *a, **k):
        if path == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *a, **k)
    monkeypatch.setattr(builtins, "open", no_cpuinfo)
    import platform
    monkeypatch.setattr(platform, "processor", lambda: "")  # as on Linux
    assert cpus.describe().startswith(platform.machine())
