package dev.fora.examples;

import dev.fora.examples.cli.BenchCommand;
import dev.fora.examples.cli.CalibrateCommand;
import dev.fora.examples.cli.RecordCommand;
import dev.fora.examples.cli.ReplayCommand;
import dev.fora.examples.cli.CliException;
import dev.fora.examples.cli.CompareCommand;
import dev.fora.examples.cli.EncodeCommand;
import dev.fora.examples.cli.ExitCodes;
import dev.fora.examples.cli.GenerateCommand;
import dev.fora.examples.cli.Policies;
import dev.fora.examples.cli.ServeCommand;
import dev.fora.examples.cli.SoakCommand;
import dev.fora.examples.cli.TuneCommand;
import dev.fora.core.sampling.GenerationCancelledException;
import dev.fora.core.sampling.NonFiniteOutputException;
import dev.fora.djl.ModelLoadException;
import dev.fora.examples.engine.Generator;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * The {@code fora} command: FORA feature caching for Diffusion Transformers, from the command
 * line. Errors print one line ({@code fora: error: ...}) and exit non-zero (see
 * {@link ExitCodes}); {@code --verbose} adds the stack trace.
 *
 * <p>Ctrl-C (or SIGTERM) cancels the running generations: a shutdown hook stops them before
 * their next step and waits up to {@link #SHUTDOWN_WAIT_SECONDS} s for the command to release
 * its native memory and report, so the JVM does not halt in the middle of a libtorch call and
 * no output file is left half written (outputs are written to a temporary file and renamed).
 */
@Command(name = "fora", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"FORA4J: Fast-FORward feature caching for Diffusion Transformers (arXiv 2407.01425).",
                "Without --model the commands use the small class-conditional DiT shipped in this jar."},
        subcommands = {GenerateCommand.class, CompareCommand.class, BenchCommand.class, SoakCommand.class,
            CalibrateCommand.class, RecordCommand.class, ReplayCommand.class, ServeCommand.class, TuneCommand.class, EncodeCommand.class},
        footer = {"", "Exit codes: 0 ok, 1 internal error, 2 invalid usage, 3 model cannot be loaded, "
                + "4 output cannot be written, 5 the model produced NaN or infinity, 130 cancelled (Ctrl-C).",
                "Run 'fora COMMAND --help' for the options of a command."})
public final class Main implements Runnable {

    @picocli.CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(),
                "missing command: generate, compare, bench, soak, calibrate, record, replay, serve, tune or encode");
    }

    /** How long the shutdown hook waits for a cancelled command to release and report. */
    static final int SHUTDOWN_WAIT_SECONDS = 10;

    /** Entry point of the jar. */
    public static void main(String[] args) {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true"); // PNG grids and plots, never a window
        }
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            Generator.cancelAll("interrupted (Ctrl-C or a termination signal)");
            try {
                done.await(SHUTDOWN_WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "fora-cancel"));
        int code;
        try {
            code = execute(args);
        } finally {
            done.countDown();
        }
        System.exit(code);
    }

    /** Runs the command line in-process and returns the exit code (for tests and embedding). */
    public static int execute(String... args) {
        return commandLine().execute(args);
    }

    /**
     * The configured command line: logging off below WARN unless {@code --verbose}, one-line
     * errors, exit codes from {@link ExitCodes}.
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        Policies.describeIn(cl);
        cl.setParameterExceptionHandler(Main::onParameterError);
        cl.setExecutionExceptionHandler(Main::onExecutionError);
        cl.setExecutionStrategy(new CommandLine.RunLast() {
            @Override
            public int execute(ParseResult parseResult) {
                configureLogging(verbose(parseResult));
                return super.execute(parseResult);
            }
        });
        return cl;
    }

    private static void configureLogging(boolean verbose) {
        String key = "org.slf4j.simpleLogger.defaultLogLevel";
        if (verbose) {
            System.setProperty(key, "info");
        } else if (System.getProperty(key) == null) {
            System.setProperty(key, "warn");
        }
        if (!verbose && System.getProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils") == null) {
            // DJL probes for CUDA on every start and warns on CPU-only machines.
            System.setProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils", "error");
        }
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
    }

    private static int onParameterError(ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        PrintWriter err = cl.getErr();
        String name = cl.getCommandSpec().qualifiedName();
        err.println(name + ": " + oneLine(e.getMessage()) + " (see '" + name + " --help')");
        err.flush();
        return ExitCodes.USAGE;
    }

    private static int onExecutionError(Exception e, CommandLine cl, ParseResult parseResult) {
        PrintWriter err = cl.getErr();
        boolean verbose = verbose(parseResult);
        int code;
        String message;
        if (e instanceof CliException c) {
            code = c.exitCode();
            message = c.getMessage();
        } else if (e instanceof ModelLoadException m) {
            code = ExitCodes.MODEL;
            message = "cannot load the model: " + m.getMessage();
        } else if (e instanceof NonFiniteOutputException) {
            code = ExitCodes.NON_FINITE;
            message = e.getMessage();
        } else if (e instanceof GenerationCancelledException) {
            code = ExitCodes.CANCELLED;
            message = e.getMessage();
        } else if (e instanceof UncheckedIOException io) {
            code = ExitCodes.OUTPUT;
            message = io.getCause().getMessage();
        } else if (e instanceof IllegalArgumentException) {
            code = ExitCodes.USAGE;
            message = e.getMessage();
        } else {
            code = ExitCodes.INTERNAL;
            message = "internal error: " + e + (verbose ? "" : " (run with --verbose for the stack trace)");
        }
        err.println("fora: error: " + oneLine(message));
        if (verbose) {
            e.printStackTrace(err);
        }
        err.flush();
        return code;
    }

    /** The first line of a message, never null. */
    static String oneLine(String message) {
        if (message == null || message.isBlank()) {
            return "(no message)";
        }
        int nl = message.indexOf('\n');
        return (nl < 0 ? message : message.substring(0, nl)).strip();
    }

    private static boolean verbose(ParseResult parseResult) {
        for (ParseResult r = parseResult; r != null; r = r.subcommand()) {
            if (r.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }

    /** Version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"fora " + (v == null ? "(development build)" : v) + ", Java "
                    + System.getProperty("java.version")};
        }
    }
}
