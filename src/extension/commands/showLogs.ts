import type { CludCommand } from './command';

export const showLogs: CludCommand = {
  id: 'clud.showLogs',
  run: async ({ controller, output }) => {
    output.show(true);
    // The container's own log (the agent's start-up) is appended when there is a container.
    const logs = await controller.workspace().logs(200).catch(() => undefined);
    if (logs) output.info(`--- container log (last 200 lines) ---\n${(logs.stdout + logs.stderr).trimEnd()}`);
  },
};
