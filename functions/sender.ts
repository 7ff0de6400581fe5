// Placeholder until the sender lands; replaced in the same session.
export const handler = async (): Promise<never> => {
  throw new Error('not implemented yet');
};
