import type { WindowConfig } from '../config/schema.ts';

const DAY_INDEX: Record<string, number> = { mon: 0, tue: 1, wed: 2, thu: 3, fri: 4, sat: 5, sun: 6 };
const WEEKDAY: Record<string, string> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

/** Whether `at` (epoch ms) falls inside the window, in the window's time zone. */
export function isWithinWindow(window: WindowConfig, at: number): boolean {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: window.timezone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(at));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = WEEKDAY[get('weekday')]!;
  const minute = Number(get('hour')) * 60 + Number(get('minute'));
  const [, h1, m1, h2, m2] = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(window.hours)!;
  const start = Number(h1) * 60 + Number(m1);
  const end = Number(h2) * 60 + Number(m2);
  return window.days.some((d) => DAY_INDEX[d] === DAY_INDEX[day]) && minute >= start && minute < end;
}

/** Describes the window for people: `mon-fri 08:00-20:00 Europe/Paris`. */
export function describeWindow(window: WindowConfig): string {
  return `${window.days.join(',')} ${window.hours} ${window.timezone}`;
}
