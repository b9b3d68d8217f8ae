// Launches Debian's Chromium headless with playwright-core (no browser download), with
// the flags this machine needs: no sandbox as root, no GPU, and no background
// networking (the network is closed).
import { chromium } from 'playwright-core';

export const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A browser; Playwright gives every launch a fresh temporary profile. */
export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.TERN_CHROMIUM || '/usr/bin/chromium',
    args: [...FLAGS, ...extraArgs],
  });
}
