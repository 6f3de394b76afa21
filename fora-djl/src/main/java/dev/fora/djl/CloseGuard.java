package dev.fora.djl;

/**
 * Makes {@code close()} safe while other threads are inside calls that use native memory:
 * libtorch does not survive memory freed under a running call (the JVM dies with SIGSEGV), so
 * every such call {@link #enter}s and {@link #exit}s, and {@link #close} marks the owner
 * closed, then waits until no call is left before the owner frees anything.
 *
 * <p>Reentrant per thread: a thread already inside a call may enter again after close began
 * (e.g. a step listener that generates), so that running work can finish. Such a thread may
 * not close the owner: it would wait for itself.
 */
final class CloseGuard {

    private final String name;
    /** How many calls the current thread is inside. */
    private final ThreadLocal<int[]> held = ThreadLocal.withInitial(() -> new int[1]);
    private int users;
    private boolean closed;

    /** @param name the owner as messages name it, e.g. "the pipeline of /models/x" */
    CloseGuard(String name) {
        this.name = name;
    }

    /**
     * Starts a call.
     *
     * @throws IllegalStateException if the owner is closed (or closing)
     */
    void enter() {
        int[] mine = held.get();
        synchronized (this) {
            if (closed && mine[0] == 0) {
                throw new IllegalStateException(name + " is closed");
            }
            users++;
        }
        mine[0]++;
    }

    /** Ends a call started by {@link #enter()}. */
    void exit() {
        held.get()[0]--;
        synchronized (this) {
            if (--users == 0) {
                notifyAll();
            }
        }
    }

    /** Whether {@link #close} has begun. */
    synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Marks the owner closed (new calls fail), runs {@code stopCalls} (to ask running calls to
     * stop early), then waits until no call is in flight. Not interruptible: an interrupt is
     * kept for later, the wait goes on.
     *
     * @return true if this call closed the owner, false if it was already closed
     * @throws IllegalStateException if the current thread is inside a call of the owner
     */
    boolean close(Runnable stopCalls) {
        if (held.get()[0] > 0) {
            throw new IllegalStateException("cannot close " + name + " from inside one of its own calls (a step listener or "
                    + "a cache policy): close would wait for that call to end");
        }
        synchronized (this) {
            if (closed) {
                return false;
            }
            closed = true;
        }
        stopCalls.run();
        boolean interrupted = false;
        synchronized (this) {
            while (users > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return true;
    }
}
