/** What `p` rejects with; throws when it resolves instead (a test that expected a failure). */
export async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
