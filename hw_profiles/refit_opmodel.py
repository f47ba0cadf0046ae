"""Refit the op model (hw_profiles/op_model.json) on this CPU's shipped 1-thread, batch-1 profiles:
`python -m hw_profiles.refit_opmodel`. The model itself (`hw_profiles.opmodel`) reads only the file."""

from __future__ import annotations

from hw_profiles.opmodel import MODEL_PATH, fit_op_model
from hw_profiles.profile import load_profile
from hw_profiles.registry import shipped_profiles
from specialize.fileio import atomic_write_json, provenance


def main() -> None:
    profiles = [
        load_profile(h["path"])
        for h in shipped_profiles()
        if h["name"] == "this-cpu" and h["kind"] == "measured" and h["batch"] == 1 and h["threads"] == 1
    ]  # one setting: thread counts would mix other efficiencies
    model = fit_op_model(profiles)
    model["provenance"] = provenance(source="python -m hw_profiles.refit_opmodel")
    atomic_write_json(MODEL_PATH, model)
    print(
        f"wrote {MODEL_PATH}: fit over {model['fit']['entries']} entries; on whole networks: "
        + "; ".join(
            f"{name} MAPE {100 * v['mape']:.1f}%, Kendall tau {v['kendall_tau']:.3f} (MACs alone "
            f"{v['kendall_tau_macs_alone']:.3f})"
            for name, v in model["fit"]["networks"].items()
        )
    )


if __name__ == "__main__":
    main()
