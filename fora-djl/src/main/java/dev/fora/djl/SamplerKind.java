package dev.fora.djl;

import dev.fora.core.sampling.DdimSampler;
import dev.fora.core.sampling.DdpmSampler;
import dev.fora.core.sampling.DiffusionSampler;
import dev.fora.core.sampling.DiffusionSchedule;
import dev.fora.core.sampling.DpmSolverPlusPlusSampler;
import java.util.Locale;

/** The samplers of the core, by the names used on command lines and in reports. */
public enum SamplerKind {
    /** Deterministic DDIM (eta 0). */
    DDIM("ddim"),
    /** Ancestral DDPM with DiT's learned-range variance. */
    DDPM("ddpm"),
    /** DPM-Solver++ (second-order multistep). */
    DPM_SOLVER_PP("dpm-solver++");

    private final String id;

    SamplerKind(String id) {
        this.id = id;
    }

    /** The name: {@code ddim}, {@code ddpm} or {@code dpm-solver++}. */
    public String id() {
        return id;
    }

    /** Creates the sampler over a respaced schedule. */
    public DiffusionSampler create(DiffusionSchedule schedule, boolean clipDenoised) {
        return switch (this) {
            case DDIM -> new DdimSampler(schedule, clipDenoised);
            case DDPM -> new DdpmSampler(schedule, clipDenoised);
            case DPM_SOLVER_PP -> new DpmSolverPlusPlusSampler(schedule, clipDenoised);
        };
    }

    /** Parses {@code ddim}, {@code ddpm} or {@code dpm-solver++} (case-insensitive). */
    public static SamplerKind parse(String name) {
        String n = name.strip().toLowerCase(Locale.ROOT);
        for (SamplerKind k : values()) {
            if (k.id.equals(n)) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown sampler \"" + name + "\"; expected ddim, ddpm or dpm-solver++");
    }

    @Override
    public String toString() {
        return id;
    }
}
