--TEST--
with tern.forwarder set and no socket answering, module start launches it detached with --socket, --active and --endpoint; with the socket answering it does not
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$fake = tern_tmp('fake-agent.sh');
$args = tern_tmp('fake-agent.args');
@unlink($args);
file_put_contents($fake, "#!/bin/sh\necho \"\$@\" > $args.tmp && mv $args.tmp $args\n");
chmod($fake, 0755);
$ini = ['tern.forwarder' => $fake, 'tern.socket' => tern_tmp('fwd.sock'), 'tern.active_path' => tern_tmp('active'), 'tern.collector' => 'http://127.0.0.1:9999'];
$cmd = tern_php_cmd($ini);
array_push($cmd, '-r', 'echo "request ran\n";');
echo shell_exec(implode(' ', array_map('escapeshellarg', $cmd)));
for ($i = 0; $i < 200 && !file_exists($args); $i++) {
    usleep(50000);
}
echo str_replace(sys_get_temp_dir() . '/tern-phpt-' . getmypid() . '-', '', (string) @file_get_contents($args));
@unlink($args);

// Now something listens on the socket: no second start.
$server = stream_socket_server('unix://' . tern_tmp('fwd.sock'));
echo shell_exec(implode(' ', array_map('escapeshellarg', $cmd)));
usleep(300000);
echo file_exists($args) ? "started again\n" : "not started while the socket answers\n";
fclose($server);
@unlink(tern_tmp('fwd.sock'));
@unlink($fake);
@unlink(tern_tmp('active'));
?>
--EXPECT--
request ran
--socket fwd.sock --active active --endpoint http://127.0.0.1:9999
request ran
not started while the socket answers
