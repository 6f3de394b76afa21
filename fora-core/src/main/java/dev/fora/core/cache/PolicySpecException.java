package dev.fora.core.cache;

/** A cache policy spec string that does not follow the grammar of {@link CachePolicies#parse(String)}. */
public final class PolicySpecException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    private final String spec;

    PolicySpecException(String spec, String problem) {
        super("invalid cache policy spec \"" + SpecNumbers.echo(spec) + "\": " + problem + "\n" + CachePolicies.grammar());
        this.spec = spec;
    }

    /** The rejected spec string. */
    public String spec() {
        return spec;
    }
}
