import type { Logger } from '../core/logger.js';
import { isUrl, type FileRoot } from '../files/root.js';

/**
 * Warn, once per name, about boot files that a client would ask for and not be served. Runs after
 * the privilege drop, with the same resolver as the server (a FIFO or a symlink out of the root
 * cannot block or fool it). Returns the names found missing (for tests). Never throws.
 */
export async function warnMissingBootFiles(root: FileRoot, files: readonly string[], log: Logger): Promise<string[]> {
  const missing: string[] = [];
  for (const name of new Set(files)) {
    if (isUrl(name)) continue;
    const r = await root.check(name);
    if (r.ok) continue;
    missing.push(name);
    log.warn('boot file is not in the TFTP root', { file: name, root: root.path, reason: r.reason });
  }
  return missing;
}
