// The official conformance CLI cannot send a bearer key: this forwards every request to TARGET
// with `Authorization: Bearer KEY` added, keeping the Host and Origin headers the suite chose.
import http from "node:http";
const [target, key] = [new URL(process.env.TARGET), process.env.KEY];
const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${key}` };
  const upstream = http.request(
    { host: target.hostname, port: target.port, path: req.url, method: req.method, headers },
    (answer) => { res.writeHead(answer.statusCode, answer.headers); answer.pipe(res); });
  upstream.on("error", () => { res.writeHead(502); res.end(); });
  req.pipe(upstream);
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
