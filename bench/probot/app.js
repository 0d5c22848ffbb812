// The smallest Probot app: it receives every delivery (Probot verifies the signature and
// parses the body) and does nothing with it. Probot stores nothing before answering.
export default (app) => {
  app.onAny(async () => {});
};
