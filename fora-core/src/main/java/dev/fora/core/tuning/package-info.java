/**
 * Offline schedule search: {@link dev.fora.core.tuning.ScheduleSearch} finds a per-block,
 * per-step {@link dev.fora.core.cache.CacheSchedule} at a FLOP bound from recordings.
 */
package dev.fora.core.tuning;
