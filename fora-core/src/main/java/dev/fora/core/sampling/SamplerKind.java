package dev.fora.core.sampling;

import java.util.Locale;

/** The samplers of the core, by the names used on command lines and in reports. */
public enum SamplerKind {
    /** Deterministic DDIM (eta 0). */
    DDIM("ddim"),
    /** Ancestral DDPM with DiT's learned-range variance. */
    DDPM("ddpm"),
    /** DPM-Solver++ (second-order multistep) on DiT's respaced discrete timesteps. */
    DPM_SOLVER_PP("dpm-solver++"),
    /**
     * DPM-Solver++(2M) on uniform continuous time, as PixArt-α's {@code DPMS} (the official
     * DPM-Solver code, {@code skip_type='time_uniform'}): {@link TimeUniformDpmSolverSampler}.
     */
    DPMS("dpms");

    private final String id;

    SamplerKind(String id) {
        this.id = id;
    }

    /** The name: {@code ddim}, {@code ddpm}, {@code dpm-solver++} or {@code dpms}. */
    public String id() {
        return id;
    }

    /**
     * Creates the sampler over a respaced schedule.
     *
     * @throws IllegalArgumentException for {@link #DPMS}, which samples on the training schedule's
     *     continuous time ({@link #create(DiffusionSchedule, int, boolean)})
     */
    public DiffusionSampler create(DiffusionSchedule schedule, boolean clipDenoised) {
        return switch (this) {
            case DDIM -> new DdimSampler(schedule, clipDenoised);
            case DDPM -> new DdpmSampler(schedule, clipDenoised);
            case DPM_SOLVER_PP -> new DpmSolverPlusPlusSampler(schedule, clipDenoised);
            case DPMS -> throw new IllegalArgumentException("dpms samples on the training schedule's continuous time; "
                    + "use create(trainingSchedule, steps, clipDenoised)");
        };
    }

    /**
     * Creates the sampler of {@code steps} steps for a model trained with {@code trainingSchedule}:
     * over its respaced schedule, or for {@link #DPMS} on its continuous time (never clipped, as
     * the official DPM-Solver).
     */
    public DiffusionSampler create(DiffusionSchedule trainingSchedule, int steps, boolean clipDenoised) {
        return this == DPMS ? new TimeUniformDpmSolverSampler(trainingSchedule, steps)
                : create(trainingSchedule.respace(steps), clipDenoised);
    }

    /** Parses {@code ddim}, {@code ddpm}, {@code dpm-solver++} or {@code dpms} (case-insensitive). */
    public static SamplerKind parse(String name) {
        String n = name.strip().toLowerCase(Locale.ROOT);
        for (SamplerKind k : values()) {
            if (k.id.equals(n)) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown sampler \"" + name + "\"; expected ddim, ddpm, dpm-solver++ or dpms");
    }

    @Override
    public String toString() {
        return id;
    }
}
