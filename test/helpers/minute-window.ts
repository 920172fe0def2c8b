// Limits count in fixed UTC minutes (src/admission/windows.ts), so a burst whose statuses a test
// states exactly must fall inside one minute: it starts in the next minute when fewer than
// `roomSeconds` are left in this one.
export async function waitForRoomInMinute(roomSeconds: number): Promise<void> {
  const secondsIntoMinute = (Date.now() % 60_000) / 1000;
  if (secondsIntoMinute > 60 - roomSeconds) await new Promise((resolve) => setTimeout(resolve, (60 - secondsIntoMinute) * 1000 + 50));
}
