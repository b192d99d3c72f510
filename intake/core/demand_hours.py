"""Where a contact falls in the desk's local week, and whether the desk was open then.

The counting of `intake.core.demand` places 100,000 contacts a busy year; these are its
fast ways to do so: the zone's few UTC-offset changes found once (`LocalOffsets`), the desk
definition in force at each moment (`OpeningTimeline`), and stretches of time whose contacts
all land in the same cell (`HourBuckets`). Pure: numbers and desks in, places out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from routing.desk import Desk
from routing.hours import opening_ranges

DAY_SECONDS = 86_400
HOURS = 24
WEEK_CELLS = 7 * HOURS
# 1970-01-01, day 0 of the epoch, was a Thursday (weekday 3, counting Monday as 0).
_EPOCH_WEEKDAY = 3


# --- local time, fast ----------------------------------------------------------------------


class LocalOffsets:
    """The UTC offsets of a zone between two instants, for turning epoch seconds local.

    `datetime.fromtimestamp(ts, tz)` for each of 100,000 contacts costs more than the
    whole page may take; the offset changes only twice a year, so each instant's offset is
    found by a bisect over the few moments it changes.
    """

    def __init__(self, tz: ZoneInfo, start: int, end: int) -> None:
        self.changes: list[int] = [start]
        self.offsets: list[int] = [self._offset(tz, start)]
        # Sampled daily: zones change their offset months apart, never twice in a day.
        moment = start
        while moment < end:
            following = min(moment + DAY_SECONDS, end)
            if self._offset(tz, following) != self.offsets[-1]:
                low, high = moment, following
                while high - low > 1:
                    middle = (low + high) // 2
                    if self._offset(tz, middle) == self.offsets[-1]:
                        low = middle
                    else:
                        high = middle
                self.changes.append(high)
                self.offsets.append(self._offset(tz, high))
            moment = following

    @staticmethod
    def _offset(tz: ZoneInfo, timestamp: int) -> int:
        offset = datetime.fromtimestamp(timestamp, tz).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return int(offset.total_seconds())

    def local(self, timestamp: int) -> int:
        """Local wall-clock seconds since the epoch: `timestamp` plus its UTC offset."""
        index = bisect_right(self.changes, timestamp) - 1
        return timestamp + self.offsets[index if index > 0 else 0]


def epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def day_of_epoch(number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=number)


def minutes_of_day(moment: time) -> int:
    return moment.hour * 60 + moment.minute


# --- the desk in force at each moment -------------------------------------------------------


class OpeningTimeline:
    """Which desk was in force when, for the question "was the desk open then?".

    `versions` are (epoch seconds from which it counts, desk), oldest first; the first
    also counts for anything before it. `demand_query.stored_timeline` reads them from the
    stored desk definitions.
    """

    def __init__(self, versions: Sequence[tuple[int, Desk]]) -> None:
        if not versions:
            raise ValueError("a timeline needs at least one desk")
        self.starts = [start for start, _ in versions]
        self.desks = [desk for _, desk in versions]
        self._ranges: list[dict[int, tuple[tuple[int, int], ...]]] = [{} for _ in self.desks]

    def version_at(self, timestamp: int) -> int:
        index = bisect_right(self.starts, timestamp) - 1
        return index if index > 0 else 0

    def open_minutes(self, version: int, day: int) -> tuple[tuple[int, int], ...]:
        """The opening ranges of local epoch day `day` as minutes of the day, end excluded."""
        cache = self._ranges[version]
        found = cache.get(day)
        if found is None:
            found = cache[day] = tuple(
                (minutes_of_day(r.start), minutes_of_day(r.end))
                for r in opening_ranges(self.desks[version], day_of_epoch(day))
            )
        return found


# --- buckets of time ------------------------------------------------------------------------

EXACT = -1  # a bucket whose contacts must each be placed alone (see HourBuckets)


class HourBuckets:
    """Stretches of time in which every contact lands in the same heatmap cell and date.

    Normally these are the hours of local time: the zone's offsets from UTC in the period
    share their minutes (whole hours in Europe, :30 in India), so a local hour is a fixed
    stretch of epoch seconds and one dict lookup per contact gives its cell, its local date
    and which of its minutes the desk was open (`mask`, bit m set = minute m open). A zone
    whose offsets differ in their minutes is counted per minute instead.

    A bucket in which the offset changes, another desk version took over, or whose version
    has a time zone of its own, is `EXACT`: each contact in it is placed by `exact`.
    """

    def __init__(self, desk: Desk, timeline: OpeningTimeline, start: int, end: int) -> None:
        self.offsets = LocalOffsets(desk.tz, start, end)
        self.timeline = timeline
        self.version_offsets = [
            LocalOffsets(version.tz, start, end) if version.tz != desk.tz else None
            for version in timeline.desks
        ]
        shifts = {offset % 3600 for offset in self.offsets.offsets}
        self.size = 3600 if len(shifts) == 1 else 60
        self.shift = shifts.pop() if self.size == 3600 else 0
        self.full = (1 << (self.size // 60)) - 1

    def bucket(self, utc_start: int) -> tuple[int, int, int]:
        """(cell, local epoch day, mask) of the bucket starting at `utc_start`."""
        changes = self.offsets.changes
        index = bisect_right(changes, utc_start) - 1
        wall = utc_start + self.offsets.offsets[index if index > 0 else 0]
        day, seconds = divmod(wall, DAY_SECONDS)
        cell = (day + _EPOCH_WEEKDAY) % 7 * HOURS + seconds // 3600
        last = utc_start + self.size - 1
        timeline = self.timeline
        version = timeline.version_at(utc_start)
        if (
            (index + 1 < len(changes) and changes[index + 1] <= last)  # the offset changes
            or (len(timeline.starts) > 1 and timeline.version_at(last) != version)
            or self.version_offsets[version] is not None
        ):
            return cell, day, EXACT
        first = seconds // 60
        mask = 0
        minutes = self.size // 60
        for opens, closes in timeline.open_minutes(version, day):
            low = opens - first if opens > first else 0
            high = closes - first if closes - first < minutes else minutes
            if low < high:
                mask |= ((1 << (high - low)) - 1) << low
        return cell, day, mask

    def exact(self, timestamp: int) -> tuple[int, int, bool]:
        """(cell, local epoch day, whether the desk was open) of one contact."""
        day, seconds = divmod(self.offsets.local(timestamp), DAY_SECONDS)
        cell = (day + _EPOCH_WEEKDAY) % 7 * HOURS + seconds // 3600
        version = self.timeline.version_at(timestamp)
        own = self.version_offsets[version]
        opening_day, opening_seconds = (
            divmod(own.local(timestamp), DAY_SECONDS) if own else (day, seconds)
        )
        minute = opening_seconds // 60
        ranges = self.timeline.open_minutes(version, opening_day)
        return cell, day, any(opens <= minute < closes for opens, closes in ranges)
