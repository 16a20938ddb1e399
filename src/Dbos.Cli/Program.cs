using System.CommandLine;
using Dbos.Cli;

return await CliApp.RunAsync(args, Console.Out, Console.Error, Console.In).ConfigureAwait(false);
